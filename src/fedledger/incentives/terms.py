"""The task's terms and the simulated workers' costs, derived from the configuration the same
way by the run and by the audit."""

from __future__ import annotations

import numpy as np
import torch

from fedledger.config import ExperimentConfig
from fedledger.federation import Federation
from fedledger.incentives.config import SCORERS, TOKEN
from fedledger.ledger.market_session import MarketPlan


def population_costs(cfg: ExperimentConfig) -> np.ndarray:
    """The private cost per unit of work of every worker of the crowd, in tokens (uniform,
    seeded)."""
    inc = cfg.incentives
    assert inc is not None
    rng = np.random.default_rng([cfg.seed, 0x636F7374])  # "cost": a stream of its own
    return rng.uniform(inc.cost_low, inc.cost_high, cfg.federation.crowd)


def private_costs(cfg: ExperimentConfig) -> np.ndarray:
    """Each worker's (each client's) private cost per unit of work, in tokens."""
    costs = population_costs(cfg)
    members = cfg.federation.members
    return costs if members is None else costs[members]


def declared_rates(cfg: ExperimentConfig) -> list[int]:
    """What each worker declares when it joins, in base units per unit of work: its private
    cost, at most the cap."""
    task = cfg.task
    assert task is not None
    cap = int(task.cost_rate_cap * TOKEN)
    return [min(int(c * TOKEN), cap) for c in private_costs(cfg)]


def market_plan(cfg: ExperimentConfig, fed: Federation) -> MarketPlan:
    task, inc = cfg.task, cfg.incentives
    assert task is not None and inc is not None
    epochs = cfg.federation.local_epochs
    return MarketPlan(
        budget=int(task.budget * TOKEN),
        cost_budget=int(task.cost_budget * TOKEN),
        stake=int(task.stake * TOKEN),
        aggregator_bond=int(task.aggregator_bond * TOKEN),
        cost_rate_cap=int(task.cost_rate_cap * TOKEN),
        max_work_per_round=max(len(y) for y in fed.client_y) * epochs,
        rounds=cfg.federation.rounds,
        epochs=epochs,
        bonus_bps=round(task.bonus_share * 10_000),
        validator_bps=round(task.validator_share * 10_000),
        scoring=SCORERS.index(inc.scoring) + 1,
        join_period=task.join_period,
        bind_period=task.bind_period,
        round_period=task.round_period,
        challenge_window=task.challenge_window,
        rates=tuple(declared_rates(cfg)),
    )


def validation_set(cfg: ExperimentConfig, fed: Federation) -> tuple[torch.Tensor, torch.Tensor]:
    """The requester's validation set: the first ``validation_samples`` of the test split."""
    inc = cfg.incentives
    assert inc is not None
    k = min(inc.validation_samples, len(fed.data.y_test))
    return fed.data.x_test[:k], fed.data.y_test[:k]
