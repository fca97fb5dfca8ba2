"""The client's side of a round, with its own key only: check the global model it downloads,
and turn its trained update into a blob and a signed commitment (train -> encode -> hash ->
sign). Nothing here sees another party's key."""

from __future__ import annotations

import hashlib

import numpy as np
import torch
from eth_account.signers.local import LocalAccount

from fedledger.errors import ProtocolError, StoreError
from fedledger.ledger.signing import Commitment, SignedCommitment, sign_commitment
from fedledger.ledger.store import decode_tensors
from fedledger.protocol.blobs import MODEL_KEY, update_blob


def receive_global(blob: bytes, *, expected_hash: bytes) -> torch.Tensor:
    """The global model's parameters from its blob, after checking the blob against the hash
    the chain records; a ProtocolError otherwise (a client must not train on it)."""
    actual = hashlib.sha256(blob).digest()
    if actual != expected_hash:
        raise ProtocolError(
            f"the global model received hashes to {actual.hex()[:16]}..., but the ledger "
            f"records {expected_hash.hex()[:16]}...; refusing to train on it"
        )
    try:
        return decode_tensors(blob)[MODEL_KEY]
    except (StoreError, KeyError) as exc:
        raise ProtocolError(f"the global model blob is not a model: {exc}") from None


def commit_update(
    update: torch.Tensor | np.ndarray | bytes,
    *,
    round: int,
    base_model_hash: bytes,
    num_samples: int,
    account: LocalAccount,
    domain: bytes,
) -> tuple[bytes, SignedCommitment]:
    """(blob, signed commitment) for a trained update: the blob is safetensors (a tensor is
    encoded; raw bytes are sent as they are), the commitment binds its SHA-256."""
    blob = update if isinstance(update, bytes) else update_blob(update)
    commitment = Commitment(
        round=round,
        base_model_hash=base_model_hash,
        update_hash=hashlib.sha256(blob).digest(),
        num_samples=num_samples,
    )
    return blob, sign_commitment(commitment, account=account, domain=domain)
