"""The protocol's two blob formats (safetensors, never pickled): an update is one float32
tensor ``delta`` of shape (d,); a global model is one float32 tensor ``params`` of shape (d,)."""

from __future__ import annotations

import torch

from fedledger.ledger.store import encode_tensors

UPDATE_KEY = "delta"
MODEL_KEY = "params"


def model_blob(params: torch.Tensor) -> bytes:
    return encode_tensors({MODEL_KEY: params})


def update_blob(delta: torch.Tensor) -> bytes:
    return encode_tensors({UPDATE_KEY: delta})
