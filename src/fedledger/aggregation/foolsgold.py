"""FoolsGold (Fung, Yoon & Beschastnikh, "The Limitations of Federated Learning in Sybil
Settings", RAID 2020).

Sybils pushing one objective send similar updates over time.  With H_i the sum of client i's
updates so far (this round included): cs = cosine similarities of the H_i (diagonal 0),
v_i = max_j cs_ij; pardoning cs_ij *= v_i / v_j where v_i < v_j; α_i = 1 − max_j cs_ij clipped
to [0, 1] and rescaled so max α = 1; then the logit α_i = κ(ln(α_i / (1 − α_i)) + 0.5)
clipped to [0, 1] (α = 1 taken as 0.99).  The paper's optional feature-importance weighting of
the output layer is not applied.

Cross-round state: ``ctx.history["foolsgold"]`` is an (n, d) tensor whose row i is the sum of
the past updates of the client behind row i (absent: first round, zeros); the result's
``state["foolsgold"]`` holds the sums with this round added, in the same row order, for the
engine to store per client id and pass back next round.
"""

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
from fedledger.aggregation._distances import cosine_similarity_matrix
from fedledger.aggregation.base import AggregationContext, AggregationResult, register_rule

RULE = "foolsgold"
HISTORY_KEY = "foolsgold"


def _check(num_clients: int, params: Mapping[str, Any]) -> None:
    param_float(params, "confidence", rule=RULE, default=1.0, low=0.0, low_open=True)


def foolsgold_weights(histories: torch.Tensor, *, confidence: float = 1.0) -> torch.Tensor:
    """(n, d) per-client update histories -> (n,) float64 learning rates α_i in [0, 1]."""
    cs = cosine_similarity_matrix(histories)
    cs.fill_diagonal_(0.0)
    v = cs.max(dim=1).values
    # pardoning: honest clients that merely resemble a sybil keep more of their weight
    pardon = (v[:, None] < v[None, :]) & (v[None, :] > 0)
    ratio = v[:, None] / v[None, :].clamp_min(1e-300)
    cs = torch.where(pardon, cs * ratio, cs)
    alpha = (1.0 - cs.max(dim=1).values).clamp(0.0, 1.0)
    top = float(alpha.max())
    if top <= 0:
        return torch.zeros_like(alpha)
    alpha = alpha / top
    alpha = torch.where(alpha >= 1.0, torch.full_like(alpha, 0.99), alpha)
    logit = confidence * (torch.log(alpha / (1.0 - alpha)) + 0.5)
    logit = torch.nan_to_num(logit, nan=0.0, posinf=1.0, neginf=0.0)
    return logit.clamp(0.0, 1.0)


@register_rule(RULE, check=_check)
def foolsgold(
    updates: torch.Tensor,
    weights: torch.Tensor,
    *,
    ctx: AggregationContext,
    confidence: float = 1.0,
) -> AggregationResult:
    """FoolsGold; the aggregate is the mean of the updates weighted by α_i × sample share
    (normalised; the paper's rule sums α_i Δ_i, which scales with n).  ``scores`` are the α_i,
    ``weights`` the normalised coefficients; clients with α_i = 0 are excluded.  Returns the new
    history in ``state``."""
    x, w = as_batch(updates, weights)
    past = ctx.history.get(HISTORY_KEY)
    if past is None:
        histories = x.clone()
    else:
        if not isinstance(past, torch.Tensor) or past.shape != x.shape:
            raise ValueError(
                f"ctx.history[{HISTORY_KEY!r}] must be a tensor of shape {tuple(x.shape)} "
                "(one row per update, same order)"
            )
        histories = past.to(torch.float32) + x
    alpha = foolsgold_weights(histories, confidence=confidence)
    kept = alpha > 0
    coeffs = shares(w * alpha, kept)
    return AggregationResult(
        aggregate=combine(x, coeffs),
        weights=coeffs.to(torch.float32),
        excluded=excluded_indices(kept),
        scores=alpha.to(torch.float32),
        state={HISTORY_KEY: histories},
    )
