"""Cosine filter: a free-rider detector. A free-rider sends a pseudo-update it never trained
for — zeros, or noise shaped like an update (Lin et al., "Free-riders in Federated Learning:
Attacks and Defenses", 2019; Fraboni et al., AISTATS 2021). Trained updates share directions
(the same model, the same task), so each correlates clearly with some other update; a random
direction in d dimensions has cosine ~ N(0, 1/d) with any fixed vector. The score of an update
is its largest |cosine| with another update, in units of that chance level::

    score_i = sqrt(d) * max_{j != i} |cos(x_i, x_j)|

Updates scoring below ``min_score`` (default 8: eight standard deviations of chance
correlation) are excluded, as are zero rows; the rest are averaged by sample count. Measured on
the robustness benchmarks, honest updates score >= 19 and independent noise <= 4.
Free-riders that all send the *same* noise correlate with each other and pass: that is a Sybil
pattern, which FoolsGold targets.
"""

from __future__ import annotations

import math
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
from fedledger.aggregation._distances import cosine_similarity_matrix
from fedledger.aggregation.base import AggregationContext, AggregationResult, register_rule

RULE = "cosine_filter"


def _check(num_clients: int, params: Mapping[str, Any]) -> None:
    param_float(params, "min_score", rule=RULE, default=8.0, low=0.0)


def correlation_scores(x: torch.Tensor) -> torch.Tensor:
    """(n, d) -> (n,) sqrt(d) * the largest |cosine| of each row with another row (0 for a
    zero row, and for every row when n = 1)."""
    cos = cosine_similarity_matrix(x, eps=1e-300).abs()  # (n, n) float64
    cos.fill_diagonal_(0.0)
    return cos.max(dim=1).values * math.sqrt(x.shape[1])


@register_rule(RULE, check=_check)
def cosine_filter(
    updates: torch.Tensor,
    weights: torch.Tensor,
    *,
    ctx: AggregationContext,
    min_score: float = 8.0,
) -> AggregationResult:
    """Exclude updates that correlate with no other update (score < ``min_score``); FedAvg of
    the rest (of everybody when nobody passes). ``scores`` are the correlation scores."""
    x, w = as_batch(updates, weights)
    score = correlation_scores(x)
    keep = score >= min_score
    if not bool(keep.any()):  # also n = 1, whose score is 0
        keep = torch.ones_like(keep)
    coeffs = shares(w, keep)
    return AggregationResult(
        aggregate=combine(x, coeffs),
        weights=coeffs.to(torch.float32),
        excluded=excluded_indices(keep),
        scores=score.to(torch.float32),
    )
