"""Cosine filter: a free-rider and noise detector. An honest update points, roughly, where the
round's robust centre (the coordinate-wise median) points; pseudo-updates that were never
trained — zeros, or noise shaped like an update (Lin et al., "Free-riders in Federated
Learning", 2019; Fraboni et al., AISTATS 2021) — are almost orthogonal to it (|cos| ~ 1/sqrt(d)).
Updates whose cosine with the median is below ``min_cosine`` are excluded; the rest are
averaged by sample count."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from fedledger.aggregation._common import (
    as_batch,
    combine,
    excluded_indices,
    param_float,
    shares,
)
from fedledger.aggregation._distances import row_norms
from fedledger.aggregation.base import AggregationContext, AggregationResult, register_rule

RULE = "cosine_filter"


def _check(num_clients: int, params: Mapping[str, Any]) -> None:
    param_float(params, "min_cosine", rule=RULE, default=0.1, low=-1.0)


def cosine_to_median(x: torch.Tensor) -> torch.Tensor:
    """(n, d) -> (n,) cosine similarity of each row with the coordinate-wise median (0 for a
    zero row or a zero median)."""
    med = x.median(dim=0).values
    dots = x @ med
    denom = row_norms(x) * torch.linalg.vector_norm(med)
    return torch.where(denom > 0, dots / denom.clamp_min(1e-30), torch.zeros_like(dots))


@register_rule(RULE, check=_check)
def cosine_filter(
    updates: torch.Tensor,
    weights: torch.Tensor,
    *,
    ctx: AggregationContext,
    min_cosine: float = 0.1,
) -> AggregationResult:
    """Exclude updates with cosine < ``min_cosine`` to the coordinate-wise median; FedAvg of the
    rest (of everybody when nobody passes). ``scores`` are the cosines."""
    x, w = as_batch(updates, weights)
    cos = cosine_to_median(x)
    keep = cos >= min_cosine
    if not bool(keep.any()):
        keep = torch.ones_like(keep)
    coeffs = shares(w, keep)
    excluded = excluded_indices(keep)
    return AggregationResult(
        aggregate=combine(x, coeffs),
        weights=coeffs.to(torch.float32),
        excluded=excluded,
        scores=cos.to(torch.float32),
    )
