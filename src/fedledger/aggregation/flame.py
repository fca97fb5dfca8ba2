"""FLAME (Nguyen et al., "FLAME: Taming Backdoors in Federated Learning", USENIX Security 2022).

1. Filtering: HDBSCAN over pairwise cosine distances of the updates with
   min_cluster_size = n/2 + 1, min_samples = 1, single cluster allowed; only the majority
   cluster is admitted (noise points are dropped).
2. Clipping: S = median of all n update norms; each admitted update is scaled by min(1, S/‖Δ_i‖).
3. Aggregation + adaptive noise: sample-weighted mean of the clipped admitted updates plus
   N(0, (λS)²) per coordinate (λ = 0.001 for image classification in the paper).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from sklearn.cluster import HDBSCAN

from fedledger.aggregation._common import (
    as_batch,
    combine,
    excluded_indices,
    gaussian_noise,
    param_float,
    param_int,
    shares,
)
from fedledger.aggregation._distances import cosine_similarity_matrix, row_norms
from fedledger.aggregation.base import AggregationContext, AggregationResult, register_rule
from fedledger.aggregation.norm_clipping import clip_factors
from fedledger.errors import ConfigError

RULE = "flame"


def _check(num_clients: int, params: Mapping[str, Any]) -> None:
    param_float(params, "noise_lambda", rule=RULE, default=0.001, low=0.0)
    mcs = param_int(params, "min_cluster_size", rule=RULE, default=None, minimum=2)
    if mcs is not None and mcs > num_clients:
        raise ConfigError(
            f"flame: min_cluster_size ({mcs}) exceeds the clients per round ({num_clients})"
        )


def majority_cluster(updates: torch.Tensor, min_cluster_size: int | None = None) -> torch.Tensor:
    """(n, d) -> (n,) bool: members of the largest HDBSCAN cluster under cosine distance."""
    n = updates.shape[0]
    if n < 3:
        return torch.ones(n, dtype=torch.bool)
    mcs = min(n, max(2, n // 2 + 1 if min_cluster_size is None else min_cluster_size))
    # cosines lie in [-1, 1] with a diagonal of 1: distances in [0, 2], zero diagonal
    dist = (1.0 - cosine_similarity_matrix(updates)).numpy()
    dist = (dist + dist.T) / 2.0
    labels = HDBSCAN(
        min_cluster_size=mcs,
        min_samples=1,
        metric="precomputed",
        allow_single_cluster=True,
        copy=True,
    ).fit_predict(dist)
    clustered = labels[labels >= 0]
    if clustered.size == 0:
        return torch.zeros(n, dtype=torch.bool)
    sizes = np.bincount(clustered)
    return torch.from_numpy(labels == int(np.argmax(sizes)))


@register_rule(RULE, check=_check)
def flame(
    updates: torch.Tensor,
    weights: torch.Tensor,
    *,
    ctx: AggregationContext,
    noise_lambda: float = 0.001,
    min_cluster_size: int | None = None,
) -> AggregationResult:
    """FLAME.  ``weights`` in the result are the coefficients applied (share × clip factor,
    zero outside the admitted cluster), ``scores`` the update norms; clients outside the majority
    cluster are excluded.  Noise comes from ``ctx.generator``."""
    x, w = as_batch(updates, weights)
    admitted = majority_cluster(x, min_cluster_size)
    norms = row_norms(x)
    bound = float(torch.quantile(norms, 0.5))
    coeffs = shares(w, admitted) * clip_factors(norms, bound)  # zeros when nobody is admitted
    agg = combine(x, coeffs)
    if noise_lambda > 0 and bound > 0:
        agg = agg + gaussian_noise(x.shape[1], noise_lambda * bound, ctx.generator, rule=RULE)
    return AggregationResult(
        aggregate=agg,
        weights=coeffs.to(torch.float32),
        excluded=excluded_indices(admitted),
        scores=norms.to(torch.float32),
    )
