"""The deterministic pieces of the round protocol that the engine and the auditor share."""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from fedledger.client import LocalResult, train_local
from fedledger.config import ExperimentConfig
from fedledger.engine.validation import UPDATE_KEY
from fedledger.ledger.store import encode_tensors

MODEL_KEY = "params"


def select_clients(
    *, seed: int, round: int, num_clients: int, k: int, eligible: list[int] | None = None
) -> list[int]:
    """Seeded choice of k distinct clients for a round, sorted; from ``eligible`` when given
    (clients excluded for their reputation are not eligible)."""
    pool = list(range(num_clients)) if eligible is None else sorted(eligible)
    k = min(k, len(pool))
    rng = np.random.default_rng([seed, round, 0x5E1EC7])
    return sorted(pool[int(i)] for i in rng.choice(len(pool), size=k, replace=False))


def eligible_clients(flag_counts: list[int], max_flags: int | None) -> list[int] | None:
    """Clients still eligible under the reputation rule (None: everybody)."""
    if max_flags is None:
        return None
    return [c for c, n in enumerate(flag_counts) if n < max_flags]


def derived_seed(*, seed: int, round: int, client: int) -> int:
    """A 64-bit seed for (run, round, client); client -1 is the aggregator."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{round}:{client}".encode()).digest()[:8], "big")


def client_generator(*, seed: int, round: int, client: int) -> torch.Generator:
    return torch.Generator().manual_seed(derived_seed(seed=seed, round=round, client=client))


def aggregation_generator(*, seed: int, round: int) -> torch.Generator:
    """The generator a (noisy) rule gets in a round; the auditor re-creates it."""
    return client_generator(seed=seed, round=round, client=-1)


def model_blob(params: torch.Tensor) -> bytes:
    return encode_tensors({MODEL_KEY: params})


def update_blob(delta: torch.Tensor) -> bytes:
    return encode_tensors({UPDATE_KEY: delta})


def local_update(
    cfg: ExperimentConfig,
    model: torch.nn.Module,
    params: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    generator: torch.Generator,
) -> LocalResult:
    """Local training with the run's [federation] settings (clients, and FLTrust's server)."""
    f = cfg.federation
    return train_local(
        model,
        params,
        x,
        y,
        epochs=f.local_epochs,
        batch_size=f.batch_size,
        lr=f.lr,
        generator=generator,
        optimizer=f.optimizer,
        momentum=f.momentum,
        weight_decay=f.weight_decay,
    )
