"""The protocol's two blob formats (safetensors, never pickled): an update is one float32
tensor ``delta`` of shape (d,); a global model is one float32 tensor ``params`` of shape (d,)."""

from __future__ import annotations

import numpy as np
import torch
from safetensors.numpy import save as _save_numpy

from fedledger.ledger.store import encode_tensors

UPDATE_KEY = "delta"
MODEL_KEY = "params"


def model_blob(params: torch.Tensor) -> bytes:
    return encode_tensors({MODEL_KEY: params})


def update_blob(delta: torch.Tensor | np.ndarray) -> bytes:
    """The update's safetensors bytes; a float32 array gives the same bytes as its tensor."""
    if isinstance(delta, np.ndarray):
        return _save_numpy({UPDATE_KEY: delta})
    return encode_tensors({UPDATE_KEY: delta})
