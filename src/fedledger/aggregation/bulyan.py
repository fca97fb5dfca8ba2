"""Bulyan (El Mhamdi et al., "The Hidden Vulnerability of Distributed Learning in Byzantium",
ICML 2018).

1. Selection: apply Krum recursively θ = n − 2f times, each time moving the winner from the
   remaining set to the selection set (scores recomputed on the remaining updates).
2. Aggregation: per coordinate, average the β = θ − 2f selected values closest to the
   coordinate-wise median of the selection.

Requires n >= 4f + 3.  The pairwise distances come from one Gram matrix; the recursion runs on
the small (n, n) matrix only.  The β closest values to the median form a contiguous window of
the sorted coordinate, so step 2 is a sort per coordinate plus a choice among 2f + 1 windows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from fedledger.aggregation._common import (
    as_batch,
    excluded_indices,
    in_range_counts,
    middle_of_sorted,
    param_int,
    reduce_columns,
    require_clients,
)
from fedledger.aggregation._distances import pairwise_sq_distances
from fedledger.aggregation.base import AggregationContext, AggregationResult, register_rule
from fedledger.aggregation.krum import krum_scores, lowest

RULE = "bulyan"


def bulyan_max_malicious(n: int) -> int:
    """The largest f Bulyan tolerates with n updates (n >= 4f + 3)."""
    return max(0, (n - 3) // 4)


def _resolve_f(n: int, num_malicious: int | None) -> int:
    f = bulyan_max_malicious(n) if num_malicious is None else num_malicious
    require_clients(n, 4 * f + 3, rule=RULE, why=f"n >= 4f + 3 with f = {f}")
    return f


def _check(num_clients: int, params: Mapping[str, Any]) -> None:
    _resolve_f(num_clients, param_int(params, "num_malicious", rule=RULE, default=None))


def recursive_krum(sq_dist: torch.Tensor, num_malicious: int, count: int) -> list[int]:
    """Indices chosen by ``count`` rounds of Krum on the shrinking remaining set, in order."""
    remaining = list(range(sq_dist.shape[0]))
    chosen: list[int] = []
    for _ in range(count):
        idx = torch.tensor(remaining)
        sub = sq_dist[idx][:, idx]
        winner = remaining[int(lowest(krum_scores(sub, num_malicious), 1, sub)[0])]
        chosen.append(winner)
        remaining.remove(winner)
    return chosen


def closest_to_median(selected: torch.Tensor, beta: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(θ, d) -> ((d,) mean of the β values closest to each coordinate's median, (θ,) how many
    coordinates of each row were averaged).  Ties go to the lowest window."""
    theta = selected.shape[0]
    if not 1 <= beta <= theta:
        raise ValueError(f"beta must be in [1, {theta}], got {beta}")
    positions = np.arange(theta)

    def block_fn(block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ordered = np.sort(block, axis=1)
        med = middle_of_sorted(ordered)[:, None]
        with np.errstate(over="ignore", invalid="ignore"):
            cost = np.maximum(
                np.abs(med - ordered[:, : theta - beta + 1]),
                np.abs(ordered[:, beta - 1 :] - med),
            )
        start = cost.argmin(axis=1)[:, None]
        window = (positions >= start) & (positions < start + beta)
        values = np.where(window, ordered, np.float32(0.0)).sum(axis=1, dtype=np.float32)
        values = values / np.float32(beta)
        rows = np.arange(ordered.shape[0])
        low, high = ordered[rows, start[:, 0]], ordered[rows, start[:, 0] + beta - 1]
        return values, in_range_counts(block, low, high)

    return reduce_columns(selected.contiguous(), block_fn)


@register_rule(RULE, check=_check)
def bulyan(
    updates: torch.Tensor,
    weights: torch.Tensor,
    *,
    ctx: AggregationContext,
    num_malicious: int | None = None,
) -> AggregationResult:
    """Bulyan with f = ``num_malicious`` (default: the largest f with n >= 4f + 3); unweighted.
    ``weights`` in the result is each client's share of the averaged values; the 2f clients the
    Krum stage left out (and any selected client that supplied no value) are excluded.
    ``scores`` are the first-round Krum scores."""
    x, _ = as_batch(updates, weights)
    n = x.shape[0]
    f = _resolve_f(n, num_malicious)
    theta = n - 2 * f
    sq_dist = pairwise_sq_distances(x)
    chosen = recursive_krum(sq_dist, f, theta)
    order = torch.tensor(sorted(chosen))
    agg, counts_sel = closest_to_median(x[order], theta - 2 * f)
    counts = torch.zeros(n, dtype=torch.int64)
    counts[order] = counts_sel
    total = counts.sum().clamp_min(1).to(torch.float64)
    return AggregationResult(
        aggregate=agg,
        weights=(counts.to(torch.float64) / total).to(torch.float32),
        excluded=excluded_indices(counts > 0),
        scores=krum_scores(sq_dist, f).to(torch.float32),
    )
