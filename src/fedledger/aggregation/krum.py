"""Krum and Multi-Krum (Blanchard et al., "Machine Learning with Adversaries: Byzantine Tolerant
Gradient Descent", NeurIPS 2017; Multi-Krum as in El Mhamdi et al., ICML 2018).

score(i) = Σ of the squared distances from x_i to its n − f − 2 nearest other updates; Krum
returns the update with the lowest score, Multi-Krum the sample-weighted mean of the m updates
with the lowest scores.  All pairwise distances come from one Gram matrix (one GEMM).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from fedledger.aggregation._common import (
    as_batch,
    combine,
    excluded_indices,
    param_int,
    require_clients,
    shares,
)
from fedledger.aggregation._distances import pairwise_sq_distances
from fedledger.aggregation.base import AggregationContext, AggregationResult, register_rule
from fedledger.errors import ConfigError


def krum_max_malicious(n: int) -> int:
    """The largest f Krum tolerates with n updates (n >= 2f + 3)."""
    return max(0, (n - 3) // 2)


def krum_scores(sq_dist: torch.Tensor, num_malicious: int) -> torch.Tensor:
    """(n, n) squared distances -> (n,) Krum scores with n − f − 2 neighbours (at least 1, at
    most n − 1; 0 neighbours for a single update)."""
    n = sq_dist.shape[0]
    k = min(max(1, n - num_malicious - 2), n - 1)
    if k <= 0:
        return torch.zeros(n, dtype=sq_dist.dtype)
    others = sq_dist.clone()
    others.fill_diagonal_(float("inf"))
    nearest = torch.topk(others, k, dim=1, largest=False, sorted=False).values
    return nearest.sum(dim=1)


def lowest(scores: torch.Tensor, m: int, sq_dist: torch.Tensor) -> torch.Tensor:
    """Indices of the m lowest scores.  Exact ties (mutual nearest neighbours have equal scores
    when few neighbours count) go to the update with the smaller total distance to all others,
    then to the lower index, so the choice does not depend on the order of the clients."""
    order = torch.sort(sq_dist.sum(dim=1), stable=True).indices
    order = order[torch.sort(scores[order], stable=True).indices]
    return order[:m]


def _resolve_f(n: int, num_malicious: int | None, *, rule: str) -> int:
    f = krum_max_malicious(n) if num_malicious is None else num_malicious
    require_clients(n, 2 * f + 3, rule=rule, why=f"n >= 2f + 3 with f = {f}")
    return f


def _check_krum(num_clients: int, params: Mapping[str, Any]) -> None:
    f = param_int(params, "num_malicious", rule="krum", default=None)
    _resolve_f(num_clients, f, rule="krum")


def _check_multikrum(num_clients: int, params: Mapping[str, Any]) -> None:
    f = param_int(params, "num_malicious", rule="multikrum", default=None)
    _resolve_f(num_clients, f, rule="multikrum")
    m = param_int(params, "num_selected", rule="multikrum", default=None, minimum=1)
    if m is not None and m > num_clients:
        raise ConfigError(
            f"multikrum: num_selected ({m}) exceeds the clients per round ({num_clients})"
        )


def _select(
    updates: torch.Tensor, weights: torch.Tensor, f: int | None, m: int | None, *, rule: str
) -> AggregationResult:
    x, w = as_batch(updates, weights)
    n = x.shape[0]
    f_ = _resolve_f(n, f, rule=rule)
    m_ = n - f_ if m is None else min(m, n)
    sq_dist = pairwise_sq_distances(x)
    scores = krum_scores(sq_dist, f_)
    kept = torch.zeros(n, dtype=torch.bool)
    kept[lowest(scores, m_, sq_dist)] = True
    coeffs = shares(w, kept)
    return AggregationResult(
        aggregate=combine(x, coeffs),
        weights=coeffs.to(torch.float32),
        excluded=excluded_indices(kept),
        scores=scores.to(torch.float32),
    )


@register_rule("krum", check=_check_krum)
def krum(
    updates: torch.Tensor,
    weights: torch.Tensor,
    *,
    ctx: AggregationContext,
    num_malicious: int | None = None,
) -> AggregationResult:
    """Krum: the single update with the lowest score.  ``num_malicious`` (f) defaults to the
    largest f with n >= 2f + 3.  Excludes every other client."""
    return _select(updates, weights, num_malicious, 1, rule="krum")


@register_rule("multikrum", check=_check_multikrum)
def multikrum(
    updates: torch.Tensor,
    weights: torch.Tensor,
    *,
    ctx: AggregationContext,
    num_malicious: int | None = None,
    num_selected: int | None = None,
) -> AggregationResult:
    """Multi-Krum: sample-weighted mean of the ``num_selected`` (m, default n − f) updates with
    the lowest Krum scores; m = n is FedAvg."""
    return _select(updates, weights, num_malicious, num_selected, rule="multikrum")
