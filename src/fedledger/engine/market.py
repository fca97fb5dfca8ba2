"""The task market's side of a run: the terms the requester posts, each round's entries
(:mod:`fedledger.incentives.entries`, scored on the requester's validation set: the first
``validation_samples`` of the test split, its own data, never trained on), and what the run
writes about the payouts (payouts.csv, incentives.png, summary fields). Without a committee
there is no bonus and no validation reward: those parts of the budget go back to the requester.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fedledger.config import ExperimentConfig
from fedledger.engine.rounds import AggregatorRound
from fedledger.federation import Federation
from fedledger.incentives.config import TOKEN
from fedledger.incentives.entries import EntryTuple, round_entries, scoring_seed
from fedledger.incentives.terms import private_costs, validation_set
from fedledger.ledger.market import round_pools
from fedledger.ledger.market_session import MarketPlan


class Scorer:
    """Makes each round's entries (:func:`~fedledger.incentives.entries.round_entries`) and
    keeps the values for the payouts file."""

    def __init__(self, cfg: ExperimentConfig, fed: Federation) -> None:
        inc = cfg.incentives
        assert inc is not None
        self.cfg, self.fed = cfg, fed
        self.x_val, self.y_val = validation_set(cfg, fed)
        self.values: list[dict[int, float]] = []  # per round: client -> value

    def entries(
        self, rnd: int, params: torch.Tensor, ar: AggregatorRound, num_samples: dict[int, int]
    ) -> list[EntryTuple]:
        inc = self.cfg.incentives
        assert inc is not None
        entries, values = round_entries(
            model=self.fed.model,
            params=params,
            used=ar.used,
            used_updates=ar.used_updates,
            num_samples=num_samples,
            order=ar.order,
            outcomes=ar.decision.outcomes,
            votes=list(zip(ar.committee, ar.votes, strict=True)),
            num_clients=self.cfg.federation.num_clients,
            epochs=self.cfg.federation.local_epochs,
            scoring=inc.scoring,
            scale=inc.score_scale,
            seed=scoring_seed(self.cfg.seed, rnd),
            x_val=self.x_val,
            y_val=self.y_val,
        )
        self.values.append(values)
        return entries


PAYOUT_COLUMNS = [
    "worker",
    "address",
    "rate",
    "cost_per_work",
    "stake",
    "scores",
    "score_total",
    "rounds_paid",
    "reward",
    "bonus",
    "validation",
    "reimbursement",
    "slashed",
    "withdrawn",
    "net",
]


def write_payouts(
    out: Path,
    cfg: ExperimentConfig,
    outcome: dict[str, Any],
    scorer: Scorer,
    entries: list[list[EntryTuple]],
    plan: MarketPlan,
    addresses: list[str],
    quality: np.ndarray,
) -> dict[str, Any]:
    """payouts.csv (token units), incentives.png, and the summary's market fields.

    ``quality``: each worker's true data quality, known to the simulation only (the rank
    correlation of scores with it goes into the summary)."""
    task = cfg.task
    assert task is not None
    n = cfg.federation.num_clients
    pools = round_pools(plan.budget, plan.bonus_bps, plan.validator_bps, plan.rounds)
    costs = private_costs(cfg)
    # base units; work units
    reward, bonus, validation, work_done = [0] * n, [0] * n, [0] * n, [0] * n
    for row in entries:  # the score, bonus and validation parts as the contract pays them
        total = sum(e[0] for e in row)
        winners = sum(1 for e in row if e[2])
        validators = sum(1 for e in row if e[3])
        for i, (s, w, b, v) in enumerate(row):
            if total and s:
                reward[i] += pools.reward * s // total
            if b:
                bonus[i] += pools.bonus // winners
            if v:
                validation[i] += pools.validator // validators
            work_done[i] += w
    rows = []
    for i in range(n):
        pay = outcome["workers"][i]
        withdrawn = pay["withdrawn"] / TOKEN
        score_total = sum(v.get(i, 0.0) for v in scorer.values)
        rows.append(
            {
                "worker": i,
                "address": addresses[i],
                "rate": plan.rates[i] / TOKEN,
                "cost_per_work": costs[i],
                "stake": task.stake,
                "scores": ";".join(f"{v.get(i, 0.0):.6g}" for v in scorer.values),
                "score_total": score_total,
                "rounds_paid": pay["rounds"] / TOKEN,
                "reward": reward[i] / TOKEN,
                "bonus": bonus[i] / TOKEN,
                "validation": validation[i] / TOKEN,
                "reimbursement": (pay["rounds"] - reward[i] - bonus[i] - validation[i]) / TOKEN,
                "slashed": pay["slashed"],
                "withdrawn": withdrawn,
                "net": withdrawn - task.stake - costs[i] * work_done[i],
            }
        )
    with (out / "payouts.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=PAYOUT_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    paid = np.array([r["rounds_paid"] for r in rows])
    _plot(out, rows)
    return {
        "market": outcome["market"],
        "token": outcome["token"],
        "task": outcome["task"],
        "phase": outcome["phase"],
        "total_paid": float(paid.sum()),
        "reimbursed": float(sum(r["reimbursement"] for r in rows)),
        "slashed": outcome["slashed_total"] / TOKEN,
        "requester_back": outcome["requester_back"] / TOKEN,
        "gini_of_rewards": gini(paid),
        "score_quality_spearman": spearman(np.array([r["score_total"] for r in rows]), quality),
    }


def gini(x: np.ndarray) -> float:
    """Gini coefficient of non-negative amounts (0: equal, towards 1: one takes all)."""
    v = np.sort(np.asarray(x, dtype=np.float64))
    if v.size == 0 or v.sum() <= 0:
        return 0.0
    k = np.arange(1, v.size + 1)
    return float((2 * (k * v).sum()) / (v.size * v.sum()) - (v.size + 1) / v.size)


def _plot(out: Path, rows: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter([r["score_total"] for r in rows], [r["rounds_paid"] for r in rows], s=18)
    for r in rows:
        if r["slashed"]:
            ax.annotate("slashed", (r["score_total"], r["rounds_paid"]), fontsize=7)
    ax.set_xlabel("contribution score (sum over rounds)")
    ax.set_ylabel("paid for rounds (tokens)")
    ax.grid(alpha=0.3)
    ax.set_title(f"{out.name}: reward against contribution")
    fig.tight_layout()
    fig.savefig(out / "incentives.png", dpi=120)
    plt.close(fig)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation (average ranks for ties); nan when either is constant."""
    ra, rb = _ranks(np.asarray(a, dtype=np.float64)), _ranks(np.asarray(b, dtype=np.float64))
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def _ranks(v: np.ndarray) -> np.ndarray:
    order = np.argsort(v, kind="stable")
    ranks = np.empty(len(v), dtype=np.float64)
    ranks[order] = np.arange(len(v), dtype=np.float64)
    for value in np.unique(v):  # ties share their mean rank
        tied = v == value
        ranks[tied] = ranks[tied].mean()
    return ranks
