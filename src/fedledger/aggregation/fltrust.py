"""FLTrust (Cao, Fang, Liu & Gong, "FLTrust: Byzantine-robust Federated Learning via Trust
Bootstrapping", NDSS 2021).

The server trains on a small clean root data set; its update g₀ arrives as ``ctx.reference``.
Trust score TS_i = ReLU(cos(g_i, g₀)); each update is rescaled to ‖g₀‖; the aggregate is
Σ TS_i · (‖g₀‖/‖g_i‖) g_i / Σ TS_i (zero when every score is zero).
"""

from __future__ import annotations

import torch

from fedledger.aggregation._common import as_batch, combine, excluded_indices
from fedledger.aggregation._distances import row_norms
from fedledger.aggregation.base import AggregationContext, AggregationResult, register_rule
from fedledger.errors import ConfigError

RULE = "fltrust"


def trust_scores(
    updates: torch.Tensor, reference: torch.Tensor, *, norms: torch.Tensor, ref_norm: float
) -> torch.Tensor:
    """(n, d), (d,) -> (n,) float64 ReLU(cos(g_i, g₀)); 0 for a zero update or reference.
    ``norms`` are ``row_norms(updates)``, ``ref_norm`` is ‖reference‖ (the caller needs them
    too)."""
    ref = reference.to(torch.float32)
    dots = (updates @ ref).to(torch.float64)
    if not bool(torch.isfinite(dots).all()):
        dots = updates.to(torch.float64) @ ref.to(torch.float64)
    denom = norms * ref_norm
    cos = torch.where(denom > 0, dots / denom.clamp_min(1e-300), torch.zeros_like(dots))
    return cos.clamp(0.0, 1.0)


@register_rule(RULE)
def fltrust(
    updates: torch.Tensor, weights: torch.Tensor, *, ctx: AggregationContext
) -> AggregationResult:
    """FLTrust; needs the server's root-data update in ``ctx.reference``.  Sample counts are not
    used (as in the paper).  ``weights`` in the result are TS_i / Σ TS, ``scores`` the TS_i;
    clients with TS_i = 0 are excluded."""
    x, _ = as_batch(updates, weights)
    if ctx.reference is None:
        raise ConfigError("fltrust needs the server's root-data update in ctx.reference")
    if ctx.reference.shape != (x.shape[1],):
        raise ValueError(
            f"ctx.reference must have shape ({x.shape[1]},), got {tuple(ctx.reference.shape)}"
        )
    norms = row_norms(x)
    ref_norm = float(row_norms(ctx.reference.to(torch.float32)[None, :])[0])
    ts = trust_scores(x, ctx.reference, norms=norms, ref_norm=ref_norm)
    total = ts.sum()
    share = ts / total if total > 0 else torch.zeros_like(ts)
    rescale = torch.where(norms > 0, ref_norm / norms.clamp_min(1e-300), torch.zeros_like(norms))
    return AggregationResult(
        aggregate=combine(x, share * rescale),
        weights=share.to(torch.float32),
        excluded=excluded_indices(ts > 0),
        scores=ts.to(torch.float32),
    )
