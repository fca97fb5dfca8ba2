"""Local training and federated evaluation with a run's settings (clients, and FLTrust's
server): [federation] for training (FedProx's ``proximal_mu`` included; ``backend`` picks the
sequential reference loop or the vectorised one, client/vectorised.py), [evaluation] for the
clients that evaluate each new global model on their own data."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

from fedledger.client.trainers import Trainer
from fedledger.client.training import LocalResult, evaluate, train_local
from fedledger.client.vectorised import ClientData, check_vectorisable, iter_vectorised
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
    """One client's update with the run's settings and backend (the vectorised backend on one
    client: what it gives that client in a round, up to float rounding)."""
    f = cfg.federation
    if f.backend == "vectorised":
        return next(local_updates(cfg, model, params, [(x, y, generator)]))
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


def local_updates(
    cfg: ExperimentConfig,
    model: torch.nn.Module,
    params: torch.Tensor,
    clients: Sequence[ClientData],
) -> Iterator[LocalResult]:
    """Every client's update, in order, with the run's backend: vectorised, all at once in
    chunks of ``federation.vectorised_chunk`` (each yielded as soon as its chunk is trained);
    sequential, one :func:`local_update` after the other."""
    f = cfg.federation
    if f.backend != "vectorised":
        for x, y, g in clients:
            yield local_update(cfg, model, params, x, y, generator=g)
        return
    yield from iter_vectorised(
        model,
        params,
        clients,
        epochs=f.local_epochs,
        batch_size=f.batch_size,
        lr=f.lr,
        optimizer=f.optimizer,
        momentum=f.momentum,
        weight_decay=f.weight_decay,
        proximal_mu=f.proximal_mu,
        chunk=f.vectorised_chunk,
    )


def check_backend(cfg: ExperimentConfig, model: torch.nn.Module) -> None:
    """ConfigError at run start if the configured backend cannot train ``model`` exactly."""
    if cfg.federation.backend == "vectorised":
        check_vectorisable(model)


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
