"""FedAvg: the sample-weighted mean of the updates (McMahan et al., AISTATS 2017)."""

from __future__ import annotations

import torch

from fedledger.aggregation.base import (
    AggregationContext,
    AggregationResult,
    normalise_weights,
    register_rule,
)


def weighted_mean(updates: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """(n, d), (n,) -> (d,): sum_i w_i x_i / sum_i w_i, accumulated in float64 for stability."""
    shares = normalise_weights(weights).to(torch.float64)
    return (shares @ updates.to(torch.float64)).to(torch.float32)


@register_rule("fedavg")
def fedavg(
    updates: torch.Tensor, weights: torch.Tensor, *, ctx: AggregationContext
) -> AggregationResult:
    """Sample-weighted average; excludes nobody."""
    return AggregationResult(
        aggregate=weighted_mean(updates, weights), weights=normalise_weights(weights)
    )
