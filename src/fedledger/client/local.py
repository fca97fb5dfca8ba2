"""Local training and federated evaluation with a run's settings (clients, and FLTrust's
server): [federation] for training (FedProx's ``proximal_mu`` included), [evaluation] for the
clients that evaluate each new global model on their own data."""

from __future__ import annotations

import torch

from fedledger.client.trainers import Trainer
from fedledger.client.training import LocalResult, evaluate, train_local
from fedledger.config import ExperimentConfig
from fedledger.protocol.seeds import client_generator

EVALUATION_STREAM = -4  # the generator stream of the evaluating clients' draw (-1..-3 are taken)
# metrics.csv's columns with [evaluation] (summary.json: final_<column>)
FEDERATED_METRICS = ("federated_accuracy", "federated_loss")


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
    train = train_local if f.trainer == "default" else _trainer(f.trainer)
    extra = {} if f.trainer == "default" else {"params": dict(f.trainer_params or {})}
    return train(
        model,
        params,
        x,
        y,
        **extra,
        epochs=f.local_epochs,
        batch_size=f.batch_size,
        lr=f.lr,
        generator=generator,
        optimizer=f.optimizer,
        momentum=f.momentum,
        weight_decay=f.weight_decay,
        proximal_mu=f.proximal_mu,
    )


def _trainer(name: str) -> Trainer:
    from fedledger.client.trainers import TRAINERS

    return TRAINERS.get(name)


def evaluation_clients(cfg: ExperimentConfig, rnd: int) -> list[int]:
    """The clients that evaluate round ``rnd``'s global model (ascending): a seeded draw of
    ``max(1, round(evaluation.fraction · num_clients))`` of all clients, re-made by the audit;
    empty without an [evaluation] section."""
    if cfg.evaluation is None:
        return []
    n = cfg.federation.num_clients
    k = max(1, round(cfg.evaluation.fraction * n))
    g = client_generator(seed=cfg.seed, round=rnd, client=EVALUATION_STREAM)
    return sorted(int(c) for c in torch.randperm(n, generator=g)[:k])


def federated_evaluate(
    cfg: ExperimentConfig,
    model: torch.nn.Module,
    params: torch.Tensor,
    client_x: list[torch.Tensor],
    client_y: list[torch.Tensor],
    *,
    rnd: int,
) -> tuple[float, float] | None:
    """(accuracy, mean cross-entropy) of ``params`` over the round's evaluating clients' own
    (training) data, weighted by their sample counts (the pooled samples: Flower's
    ``weighted_loss_avg`` convention); None without an [evaluation] section."""
    chosen = evaluation_clients(cfg, rnd)
    if not chosen:
        return None
    x = torch.cat([client_x[c] for c in chosen])
    y = torch.cat([client_y[c] for c in chosen])
    return evaluate(model, params, x, y)
