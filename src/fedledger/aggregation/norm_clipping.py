"""Norm clipping with optional weak differential privacy (Sun et al., "Can You Really Backdoor
Federated Learning?", 2019): scale every update to norm <= M, take the sample-weighted mean,
and optionally add N(0, σ²) noise to it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from fedledger.aggregation._common import (
    as_batch,
    combine,
    gaussian_noise,
    param_float,
    shares,
)
from fedledger.aggregation._distances import row_norms
from fedledger.aggregation.base import AggregationContext, AggregationResult, register_rule

RULE = "norm_clipping"


def _check(num_clients: int, params: Mapping[str, Any]) -> None:
    param_float(params, "max_norm", rule=RULE, default=None, low=0.0, low_open=True)
    param_float(params, "noise_std", rule=RULE, default=0.0, low=0.0)


def clip_factors(norms: torch.Tensor, bound: float) -> torch.Tensor:
    """(n,) norms -> (n,) factors min(1, bound / ‖x_i‖) (1 for zero rows)."""
    return torch.where(norms > bound, bound / norms.clamp_min(1e-300), torch.ones_like(norms))


@register_rule(RULE, check=_check)
def norm_clipping(
    updates: torch.Tensor,
    weights: torch.Tensor,
    *,
    ctx: AggregationContext,
    max_norm: float | None = None,
    noise_std: float = 0.0,
) -> AggregationResult:
    """Clip each update to L2 norm ``max_norm`` (default: the round's median update norm), take
    the sample-weighted mean, add N(0, ``noise_std``²) per coordinate from ``ctx.generator``.
    ``weights`` in the result are the coefficients share_i · clip_i actually applied (a clipped
    client's share shrinks); ``scores`` are the update norms; nobody is excluded."""
    x, w = as_batch(updates, weights)
    norms = row_norms(x)
    bound = float(torch.quantile(norms, 0.5)) if max_norm is None else float(max_norm)
    coeffs = shares(w) * clip_factors(norms, bound)
    agg = combine(x, coeffs)
    if noise_std > 0:
        agg = agg + gaussian_noise(x.shape[1], noise_std, ctx.generator, rule=RULE)
    return AggregationResult(
        aggregate=agg, weights=coeffs.to(torch.float32), scores=norms.to(torch.float32)
    )
