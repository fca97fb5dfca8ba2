"""The aggregator's checks on a committed update, shared with the auditor.

An update blob is a safetensors file with exactly one tensor ``delta``: float32, shape (d,),
finite. Anything else is rejected with a :class:`RejectReason`; the run goes on.
"""

from __future__ import annotations

import torch

from fedledger.errors import StoreError, UpdateRejected
from fedledger.ledger.store import BlobStore, decode_tensors
from fedledger.protocol.blobs import UPDATE_KEY
from fedledger.protocol.outcomes import RejectReason


def check_update(delta: object, *, dim: int) -> torch.Tensor:
    """Return ``delta`` if it is a finite float32 tensor of shape (dim,); else raise UpdateRejected."""
    if not isinstance(delta, torch.Tensor):
        raise UpdateRejected(RejectReason.MALFORMED.name, f"expected a tensor, got {type(delta)}")
    if delta.dtype != torch.float32:
        raise UpdateRejected(
            RejectReason.WRONG_DTYPE.name, f"expected float32, got {str(delta.dtype)}"
        )
    if tuple(delta.shape) != (dim,):
        raise UpdateRejected(
            RejectReason.WRONG_SHAPE.name, f"expected shape ({dim},), got {tuple(delta.shape)}"
        )
    if not bool(torch.isfinite(delta).all()):
        bad = int((~torch.isfinite(delta)).sum())
        raise UpdateRejected(RejectReason.NON_FINITE.name, f"{bad} NaN/Inf entries")
    return delta


def load_update(store: BlobStore, update_hash: str, *, dim: int, num_samples: int) -> torch.Tensor:
    """Fetch, verify and check one committed update."""
    if num_samples <= 0:
        raise UpdateRejected(RejectReason.BAD_SAMPLE_COUNT.name, f"{num_samples} samples")
    try:
        data = store.get_bytes(update_hash)
    except StoreError as exc:  # one lookup on the good path; tell missing from altered after
        if update_hash not in store:
            raise UpdateRejected(
                RejectReason.BLOB_MISSING.name, f"no blob {update_hash} in the store"
            ) from exc
        raise UpdateRejected(RejectReason.HASH_MISMATCH.name, str(exc)) from exc
    return check_blob(data, dim=dim)


def check_blob(data: bytes, *, dim: int) -> torch.Tensor:
    """Parse an update blob (safetensors, one tensor ``delta``) and check the tensor."""
    try:
        tensors = decode_tensors(data)
    except StoreError as exc:
        raise UpdateRejected(RejectReason.MALFORMED.name, str(exc)) from exc
    if set(tensors) != {UPDATE_KEY}:
        raise UpdateRejected(
            RejectReason.MALFORMED.name,
            f"expected one tensor {UPDATE_KEY!r}, got {sorted(tensors)}",
        )
    return check_update(tensors[UPDATE_KEY], dim=dim)


def reason_code(exc: UpdateRejected) -> int:
    return int(RejectReason[exc.reason])
