"""Coordinate-wise trimmed mean (Yin et al., "Byzantine-Robust Distributed Learning: Towards
Optimal Statistical Rates", ICML 2018): per coordinate, drop the ⌊βn⌋ largest and ⌊βn⌋
smallest values and average the rest."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from fedledger.aggregation._common import (
    as_batch,
    coordinate_shares,
    excluded_indices,
    in_range_counts,
    param_float,
    reduce_columns,
)
from fedledger.aggregation.base import AggregationContext, AggregationResult, register_rule

RULE = "trimmed_mean"


def num_trimmed(n: int, beta: float) -> int:
    """How many values are cut from each end: ⌊βn⌋ (as Flower's and scipy's trim_mean)."""
    return int(np.floor(beta * n + 1e-9))


def _check(num_clients: int, params: Mapping[str, Any]) -> None:
    param_float(params, "beta", rule=RULE, default=0.1, low=0.0, high=0.5, high_open=True)


def coordinate_trimmed_mean(updates: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, d), k -> ((d,) mean of the n − 2k middle values, (n,) coordinates kept per client)."""
    n = updates.shape[0]
    if not 0 <= 2 * k < n:
        raise ValueError(f"cannot trim {k} values from each end of {n}")

    def block_fn(block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ordered = np.sort(block, axis=1)
        middle = ordered[:, k : n - k]
        values = middle.mean(axis=1, dtype=np.float32)
        return values, in_range_counts(block, middle[:, 0], middle[:, -1])

    return reduce_columns(updates, block_fn)


@register_rule(RULE, check=_check)
def trimmed_mean(
    updates: torch.Tensor, weights: torch.Tensor, *, ctx: AggregationContext, beta: float = 0.1
) -> AggregationResult:
    """Unweighted coordinate-wise β-trimmed mean, 0 <= β < 0.5 (β = 0 is the plain mean).
    ``weights`` in the result is each client's share of the kept values; a client none of whose
    values was kept is excluded."""
    x, _ = as_batch(updates, weights)
    k = num_trimmed(x.shape[0], beta)
    agg, counts = coordinate_trimmed_mean(x, k)
    return AggregationResult(
        aggregate=agg,
        weights=coordinate_shares(counts),
        excluded=excluded_indices(counts > 0),
        scores=counts.to(torch.float32),
    )
