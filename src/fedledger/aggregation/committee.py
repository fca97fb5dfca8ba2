"""``committee``: the committee vote filter (done by the engine before any rule, see
fedledger.protocol.committee), then the sample-weighted mean of the accepted updates."""

from __future__ import annotations

import torch

from fedledger.aggregation.base import AggregationContext, AggregationResult, register_rule
from fedledger.aggregation.fedavg import fedavg


@register_rule("committee")
def committee(
    updates: torch.Tensor, weights: torch.Tensor, *, ctx: AggregationContext
) -> AggregationResult:
    """FedAvg over the updates the committee accepted (the engine drops the others first)."""
    return fedavg(updates, weights, ctx=ctx)
