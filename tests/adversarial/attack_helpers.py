"""What the adversarial tests share: exact-error patterns and the raw moves of a dishonest
aggregator (forged entries, hand-packed batches) that the honest wrapper never makes."""

from __future__ import annotations

import re
from dataclasses import replace

from eth_account.signers.local import LocalAccount
from ledger_fixtures import Fed, make_fed

from fedledger.ledger.contract import pack_commitments
from fedledger.ledger.signing import SignedCommitment, keccak

AGGREGATOR_ROLE = keccak(text="AGGREGATOR_ROLE")
ADMIN_ROLE = bytes(32)  # AccessControl's DEFAULT_ADMIN_ROLE


def _show(v: object) -> str:
    """An argument as the wrapper decodes it: addresses lower-case, bytes as 0x hex."""
    if isinstance(v, bytes):
        return "0x" + v.hex()
    if isinstance(v, str) and v.startswith("0x"):
        return v.lower()
    return str(v)


def err(name: str, **args: object) -> str:
    """A regex matching exactly ``name(k=v, ...)``, the wrapper's rendering of a custom error."""
    inner = ", ".join(f"{k}={_show(v)}" for k, v in args.items())
    return re.escape(f"{name}({inner})")


def index_of(fed: Fed) -> dict[str, int]:
    return {c.address: i for i, c in enumerate(fed.clients)}


def with_signature(s: SignedCommitment, *, r: bytes, vs: bytes) -> SignedCommitment:
    return replace(s, r=r, vs=vs)


def zero_signature(s: SignedCommitment) -> SignedCommitment:
    return with_signature(s, r=bytes(32), vs=bytes(32))


def entry(index: int, *, update: bytes = b"\x11" * 32, samples: int = 5) -> bytes:
    """One hand-packed commitment (a zero signature): clientIndex | hash | samples | r | vs."""
    return index.to_bytes(4, "big") + update + samples.to_bytes(8, "big") + bytes(64)


def post_raw(fed: Fed, packed: bytes, *, round: int | None = None) -> None:
    """postCommitments with bytes the wrapper would never build."""
    rnd = fed.round if round is None else round
    c = fed.contract
    c._send(
        fed.aggregator,
        c.contract.functions.postCommitments(rnd, packed),
        gas=1_000_000,
        label="postCommitments",
        round=rnd,
    )


def post_batch(fed: Fed, batch: list[SignedCommitment], *, round: int | None = None) -> bytes:
    """Post ``batch`` as one postCommitments call; returns its packed bytes (for proofs)."""
    rnd = fed.round if round is None else round
    fed.contract.post_commitments(fed.aggregator, round=rnd, signed=batch)
    return pack_commitments(batch, index_of(fed))


def prove(
    fed: Fed,
    packed: bytes,
    position: int,
    client: int,
    *,
    batch: int = 0,
    round: int | None = None,
    prover: LocalAccount | None = None,
) -> None:
    """proveBadSignature for the entry at ``position``, naming client ``client``'s address."""
    fed.contract.prove_bad_signature(
        prover or fed.outsider,
        round=fed.round if round is None else round,
        batch=batch,
        position=position,
        packed=packed,
        client=fed.addr(client),
    )


def prover_of_last_fraud(fed: Fed) -> str:
    fed.contract.forget_events()
    (*_, last) = fed.contract._logs("FraudProven")
    return str(last["args"]["prover"])


def wide_fed(**kw: object) -> Fed:
    """Four clients (make_fed's defaults) with a 10-block window: on the embedded chain every
    refused transaction is mined (status 0) and takes a block of the window."""
    return make_fed(**{"window": 10, "timeout": 30, **kw})  # type: ignore[arg-type]
