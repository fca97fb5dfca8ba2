"""Local training with a run's [federation] settings (clients, and FLTrust's server)."""

from __future__ import annotations

import torch

from fedledger.client.training import LocalResult, train_local
from fedledger.config import ExperimentConfig


def local_update(
    cfg: ExperimentConfig,
    model: torch.nn.Module,
    params: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    generator: torch.Generator,
) -> LocalResult:
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
