"""The clients' and committee members' protocol steps that need no training: serialise and
store each update, sign its EIP-712 commitment, sign committee votes; and the aggregator's
storing of the new global model. Runs in the ledger process (engine/ledger_process.py), which
turns each :class:`RoundRecord` into the :class:`RoundPlan` its LedgerSession records.
"""

from __future__ import annotations

from eth_account.signers.local import LocalAccount
from safetensors.numpy import save as st_save_numpy

from fedledger.engine.ledger_process import RoundRecord, read_dense
from fedledger.ledger.session import RoundPlan
from fedledger.ledger.signing import (
    Commitment,
    SignedCommitment,
    sign_commitment,
    sign_vote,
)
from fedledger.ledger.store import BlobStore
from fedledger.protocol.blobs import UPDATE_KEY


class Parties:
    """The federation's keys and blob store, acting for each party in turn."""

    def __init__(self, *, clients: list[LocalAccount], store: BlobStore, domain: bytes) -> None:
        """``domain``: the EIP-712 domain separator every signature binds to."""
        self.clients = clients
        self.store = store
        self.domain = domain

    def commit(self, rec: RoundRecord) -> RoundPlan:
        """Store and sign every update of the round, sign the votes, store the global model."""
        dense = read_dense(rec)
        signed: dict[int, SignedCommitment] = {}
        with self.store.batch():
            for i, cid in enumerate(rec.order):
                row = rec.dense_rows[i]
                blob = rec.blobs[i] if row < 0 else st_save_numpy({UPDATE_KEY: dense[row]})
                signed[cid] = sign_commitment(
                    Commitment(
                        round=rec.round,
                        update_hash=bytes.fromhex(self.store.put_bytes(blob)),
                        num_samples=rec.num_samples[i],
                    ),
                    account=self.clients[cid],
                    domain=self.domain,
                )
            global_model_hash = bytes.fromhex(self.store.put_bytes(rec.model_blob))
        return RoundPlan(
            round=rec.round,
            base_model_hash=rec.base_model_hash,
            selected=rec.selected,
            batch=[signed[c] for c in rec.order if c not in rec.dropped],
            left_out=[(c, signed[c]) for c in rec.order if c in rec.dropped],
            order=rec.order,
            outcomes=rec.outcomes,
            flagged=rec.flagged,
            global_model_hash=global_model_hash,
            committee=rec.committee,
            votes=[
                sign_vote(
                    round=rec.round, accept=bytes(v), account=self.clients[m], domain=self.domain
                )
                for m, v in zip(rec.committee, rec.votes, strict=True)
            ],
        )

    def close(self) -> None:
        self.store.close()
