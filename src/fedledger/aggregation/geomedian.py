"""Geometric median via the smoothed Weiszfeld algorithm — RFA (Pillutla, Kakade & Harchaoui,
"Robust Aggregation for Federated Learning", IEEE Trans. Signal Processing 2022).

Minimises Σ_i α_i ‖v − x_i‖ (α = sample shares) by v ← Σ β_i x_i / Σ β_i with
β_i = α_i / max(ν, ‖v − x_i‖), starting from the coordinate-wise median.  Every iterate is a convex combination v = Σ c_j x_j, so
‖v − x_i‖² = cᵀGc − 2(Gc)_i + G_ii follows from one Gram matrix G (one GEMM, rows centred on
the coordinate-wise median to limit cancellation): each iteration costs O(n²) instead of a pass
over the (n, d) batch.
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
    param_int,
    shares,
)
from fedledger.aggregation._distances import gram_matrix
from fedledger.aggregation.base import AggregationContext, AggregationResult, register_rule
from fedledger.aggregation.median import coordinate_median

RULE = "geomedian"


def _check(num_clients: int, params: Mapping[str, Any]) -> None:
    param_int(params, "max_iter", rule=RULE, default=200, minimum=1)
    param_float(params, "tol", rule=RULE, default=1e-6, low=0.0)
    param_float(params, "nu", rule=RULE, default=1e-6, low=0.0, low_open=True)


def _distances(gram: torch.Tensor, coeffs: torch.Tensor) -> torch.Tensor:
    gc = gram @ coeffs
    sq = coeffs @ gc - 2.0 * gc + torch.diagonal(gram)
    return sq.clamp_min(0.0).sqrt()


def weiszfeld_coefficients(
    gram: torch.Tensor,
    alpha: torch.Tensor,
    *,
    max_iter: int,
    tol: float,
    nu: float,
    start_dist: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Smoothed Weiszfeld on a Gram matrix: returns the convex coefficients c of the geometric
    median (Σ c = 1) and the distances ‖v − x_i‖, both float64.

    The first step starts from a point at distances ``start_dist`` from the updates (default:
    the weighted mean); iterations stop when v moves by at most ``tol`` × the median distance
    ‖v − x_i‖ (a relative-objective test would stop early next to a far outlier, whose
    distance swamps the objective)."""
    coeffs = alpha.clone()
    dist = _distances(gram, coeffs) if start_dist is None else start_dist
    for step_no in range(max_iter):
        beta = alpha / dist.clamp_min(nu)
        new = beta / beta.sum()
        step = new - coeffs
        moved = max(float(step @ (gram @ step)), 0.0) ** 0.5  # ‖v_new − v‖
        coeffs = new
        dist = _distances(gram, coeffs)
        # from an explicit start the first "previous" point is not a combination of the rows
        measured = step_no > 0 or start_dist is None
        if measured and moved <= tol * float(torch.quantile(dist, 0.5)):
            break
    return coeffs, dist


@register_rule(RULE, check=_check)
def geomedian(
    updates: torch.Tensor,
    weights: torch.Tensor,
    *,
    ctx: AggregationContext,
    max_iter: int = 200,
    tol: float = 1e-6,
    nu: float = 1e-6,
) -> AggregationResult:
    """Sample-weighted geometric median (RFA).  ``weights`` in the result are the coefficients
    of the median as a convex combination of the updates (far-away clients get little);
    ``scores`` are the distances ‖median − x_i‖.  Only clients with zero weight are excluded."""
    x, w = as_batch(updates, weights)
    alpha = shares(w)
    # rows centred on the coordinate-wise median m: diag(G) = ‖x_i − m‖², so the iteration can
    # start from m, which an outlier cannot drag away (the weighted mean can)
    gram = gram_matrix(x, center=coordinate_median(x)[0])
    start = torch.diagonal(gram).clamp_min(0.0).sqrt()
    coeffs, dist = weiszfeld_coefficients(
        gram, alpha, max_iter=max_iter, tol=tol, nu=nu, start_dist=start
    )
    return AggregationResult(
        aggregate=combine(x, coeffs),
        weights=coeffs.to(torch.float32),
        excluded=excluded_indices(coeffs > 0),
        scores=dist.to(torch.float32),
    )
