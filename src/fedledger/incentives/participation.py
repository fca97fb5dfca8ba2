"""Who joins a task: individual rationality on the posted terms.

With ``incentives.participation = "rational"`` the task is posted to a crowd of
``federation.num_clients`` workers; each one joins only if what it expects to be paid covers
what it expects the work to cost it. A worker knows the posted terms, its own data size and its
own private cost per unit of work, not the others'. Its belief, fixed here and documented in
docs/incentives.md:

* it trains in every round (participation assumes no sub-sampling of clients): expected work
  ``W = rounds x samples x local_epochs``;
* it expects an equal share of the reward budget: ``budget / crowd``;
* it declares its cost, capped: ``rate = min(cost, cost_rate_cap)``, and expects that rate to be
  reimbursed for its work, scaled by the worst-case coverage of the cost budget, which the terms
  alone give: ``min(1, cost_budget / (cost_rate_cap x most samples x epochs x crowd x rounds))``;
* its stake comes back (it does not plan to cheat), so staking costs it nothing.

It joins when ``reward + reimbursement >= cost x W``. Who misbehaves (``[attack]``) is drawn
later among those who joined. The run then is the run of the members: the resolved
``config.toml`` records ``federation.population`` (the crowd) and ``federation.members`` (who
joined), and ``fedledger audit`` re-derives the decision from them.
"""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from fedledger.config import ExperimentConfig, config_from_dict
from fedledger.errors import ConfigError
from fedledger.federation import load_data, population_parts
from fedledger.incentives.terms import population_costs


@dataclass(frozen=True)
class Offer:
    """One worker of the crowd, the terms as it sees them, and its decision (tokens)."""

    worker: int
    samples: int
    cost_per_work: float
    rate: float
    expected_work: int
    expected_reward: float
    expected_reimbursement: float
    expected_cost: float
    joined: bool


COLUMNS = [f.name for f in fields(Offer)]  # participation.csv


def decide(
    *,
    sizes: list[int],
    costs: list[float],
    rounds: int,
    epochs: int,
    budget: float,
    cost_budget: float,
    cost_rate_cap: float,
) -> list[Offer]:
    """Each worker's decision on the terms (pure; see the module docstring)."""
    crowd = len(sizes)
    worst_claims = cost_rate_cap * max(sizes) * epochs * crowd * rounds
    coverage = 1.0 if worst_claims == 0 else min(1.0, cost_budget / worst_claims)
    reward = budget / crowd
    out = []
    for i, (n, c) in enumerate(zip(sizes, costs, strict=True)):
        work = rounds * n * epochs
        rate = min(c, cost_rate_cap)
        reimbursement = rate * work * coverage
        cost = c * work
        out.append(
            Offer(
                worker=i,
                samples=n,
                cost_per_work=c,
                rate=rate,
                expected_work=work,
                expected_reward=reward,
                expected_reimbursement=reimbursement,
                expected_cost=cost,
                joined=reward + reimbursement >= cost,
            )
        )
    return out


def crowd_offers(cfg: ExperimentConfig) -> list[Offer]:
    """The decisions of the crowd ``cfg`` describes (before or after resolution)."""
    task, fed = cfg.task, cfg.federation
    assert task is not None
    parts = population_parts(cfg, load_data(cfg))
    return decide(
        sizes=[len(p) for p in parts],
        costs=[float(c) for c in population_costs(cfg)],
        rounds=fed.rounds,
        epochs=fed.local_epochs,
        budget=task.budget,
        cost_budget=task.cost_budget,
        cost_rate_cap=task.cost_rate_cap,
    )


def needs_resolution(cfg: ExperimentConfig) -> bool:
    """True for a task whose workers decide whether to join, not decided yet."""
    inc = cfg.incentives
    return inc is not None and inc.participation == "rational" and cfg.federation.members is None


def resolve(cfg: ExperimentConfig) -> tuple[ExperimentConfig, list[Offer]]:
    """The run of the workers who join: ``cfg`` with ``federation.population`` (the crowd),
    ``members`` (who joined) and ``num_clients`` set; a ConfigError when nobody joins."""
    offers = crowd_offers(cfg)
    members = [o.worker for o in offers if o.joined]
    if not members:
        lowest = min(offers, key=lambda o: o.expected_cost - o.expected_reimbursement)
        raise ConfigError(
            f"no worker of the {len(offers)} joins at these terms: the cheapest to serve "
            f"expects a cost of {lowest.expected_cost:.4g} tokens against "
            f"{lowest.expected_reward + lowest.expected_reimbursement:.4g} paid; raise "
            "task.budget, task.cost_budget or task.cost_rate_cap"
        )
    data = cfg.model_dump(mode="json", exclude_none=True)
    fed = data["federation"]
    fed.pop("clients_per_round", None)
    fed.pop("fraction", None)
    fed.update(population=len(offers), members=members, num_clients=len(members))
    return config_from_dict(data), offers


def write_offers(path: Path, offers: list[Offer]) -> None:
    """participation.csv: one row per worker of the crowd."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS)
        w.writeheader()
        for o in offers:
            w.writerow({**asdict(o), "joined": int(o.joined)})


def participation_summary(offers: list[Offer]) -> dict[str, int]:
    """summary.json's market.participation: the crowd, and how many of it joined."""
    return {"crowd": len(offers), "joined": sum(o.joined for o in offers)}
