"""Coordinate-wise median (Yin et al., "Byzantine-Robust Distributed Learning: Towards Optimal
Statistical Rates", ICML 2018)."""

from __future__ import annotations

import numpy as np
import torch

from fedledger.aggregation._common import (
    as_batch,
    coordinate_shares,
    excluded_indices,
    in_range_counts,
    middle_of_sorted,
    reduce_columns,
)
from fedledger.aggregation.base import AggregationContext, AggregationResult, register_rule


def _median_block(block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ordered = np.sort(block, axis=1)
    n = ordered.shape[1]
    counts = in_range_counts(block, ordered[:, (n - 1) // 2], ordered[:, n // 2])
    return middle_of_sorted(ordered), counts


def coordinate_median(updates: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, d) -> ((d,) median per coordinate, (n,) how many coordinates each client supplied).

    For even n the median is the mean of the two middle values (as ``numpy.median``)."""
    return reduce_columns(updates, _median_block)


@register_rule("median")
def median(
    updates: torch.Tensor, weights: torch.Tensor, *, ctx: AggregationContext
) -> AggregationResult:
    """Unweighted coordinate-wise median.  ``weights`` in the result is the share of
    coordinates each client supplied (a middle value); a client that supplied none is excluded."""
    x, _ = as_batch(updates, weights)
    agg, counts = coordinate_median(x)
    return AggregationResult(
        aggregate=agg,
        weights=coordinate_shares(counts),
        excluded=excluded_indices(counts > 0),
        scores=counts.to(torch.float32),
    )
