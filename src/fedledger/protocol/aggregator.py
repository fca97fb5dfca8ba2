"""The aggregator's side of receiving an update: before anything is aggregated, check that the
commitment is the selected client's own signature for this round and base model, and that the
blob that arrived is the one it commits to. The aggregator holds no client key: it checks
signatures against the clients' public addresses."""

from __future__ import annotations

import hashlib

from fedledger.ledger.signing import SignedCommitment, commitment_digest, recover_digest_raw
from fedledger.protocol.outcomes import USED, RejectReason


def verify_receipt(
    blob: bytes | None,
    signed: SignedCommitment,
    *,
    client: str,
    round: int,
    base_model_hash: bytes,
    domain: bytes,
) -> tuple[int, str]:
    """(verdict, detail): USED when the blob and the commitment check out, else the reason.

    BAD_SIGNATURE: not the client's signature of a commitment for this round and base model
    (the contract would make it provable, so the aggregator does not post it); BLOB_MISSING /
    HASH_MISMATCH: the commitment is the client's, but its blob did not arrive intact (the
    commitment is recorded with that outcome)."""
    c = signed.commitment
    if c.round != round or c.base_model_hash != base_model_hash:
        return int(RejectReason.BAD_SIGNATURE), (
            f"commitment for round {c.round} on model {c.base_model_hash.hex()[:16]}..., "
            f"not round {round} on {base_model_hash.hex()[:16]}..."
        )
    signer = recover_digest_raw(commitment_digest(c, domain=domain), r=signed.r, vs=signed.vs)
    if signer != bytes.fromhex(client[2:]) or signed.client != client:
        who = "an invalid signature" if signer is None else f"signed by 0x{signer.hex()}"
        return int(RejectReason.BAD_SIGNATURE), f"{who}, not by client {client}"
    if blob is None:
        return int(RejectReason.BLOB_MISSING), f"no blob {c.update_hash.hex()} arrived"
    actual = hashlib.sha256(blob).digest()
    if actual != c.update_hash:
        return int(RejectReason.HASH_MISMATCH), (
            f"the blob hashes to {actual.hex()[:16]}..., the commitment to "
            f"{c.update_hash.hex()[:16]}..."
        )
    return USED, ""
