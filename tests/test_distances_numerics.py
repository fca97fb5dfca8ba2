"""Pairwise squared distances stay exact when the updates share a large common component.

Every row is c + s_i with ‖c‖ ≈ 1e4 and ‖s_i‖ ≈ 1e-1: the float32 Gram form on the raw rows
loses all of ‖x_i − x_j‖² ≈ 1e-2 to cancellation against ‖x_i‖² ≈ 1e8, and Krum, Multi-Krum and
Bulyan then pick the wrong updates.  The references below use explicit float64 differences of the
(float32) rows the rules see, and independent float64 loops for the Krum selections.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fedledger.aggregation import AggregationContext, create_rule
from fedledger.aggregation._distances import pairwise_sq_distances

N, D = 10, 5000
COMMON_NORM, SMALL_NORM = 1e4, 1e-1


def shared_component_batch(seed: int, n: int = N, d: int = D) -> torch.Tensor:
    """(n, d) float32 rows c + s_i: ‖c‖ = 1e4; the small parts have norms 0.05 · 1.3^k (k a
    random permutation of 0..n−1, so ~1e-1 and a clear Krum order, with a tight cluster of
    the smallest ones as the clearly closest group)."""
    g = torch.Generator().manual_seed(seed)
    c = torch.randn(d, generator=g, dtype=torch.float64)
    c *= COMMON_NORM / c.norm()
    s = torch.randn(n, d, generator=g, dtype=torch.float64)
    ranks = torch.randperm(n, generator=g).to(torch.float64)
    norms = SMALL_NORM * 0.5 * 1.3**ranks
    s *= (norms / s.norm(dim=1))[:, None]
    return (c + s).to(torch.float32)


def exact_sq_distances(x: torch.Tensor) -> torch.Tensor:
    """Explicit float64 differences: the exact squared distances of the float32 rows."""
    x64 = x.to(torch.float64)
    return ((x64[:, None, :] - x64[None, :, :]) ** 2).sum(dim=2)


def max_relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    off = ~torch.eye(want.shape[0], dtype=torch.bool)
    return float(((got - want).abs() / want)[off].max())


def ref_scores(dist: np.ndarray, f: int) -> np.ndarray:
    n = len(dist)
    k = min(max(1, n - f - 2), n - 1)
    return np.array([sum(sorted(dist[i, j] for j in range(n) if j != i)[:k]) for i in range(n)])


def ref_multikrum(dist: np.ndarray, f: int, m: int) -> list[int]:
    return sorted(int(i) for i in np.argsort(ref_scores(dist, f), kind="stable")[:m])


def ref_bulyan_selections(dist: np.ndarray, f: int) -> set[tuple[int, ...]]:
    """The selections θ = n − 2f rounds of Krum on the remaining rows can make.  Late rounds
    count one neighbour, where mutual nearest neighbours tie exactly: as the rule documents,
    the smaller total distance to the remaining rows wins.  Next to a 1e30 outlier those totals
    are equal to float64 precision (each holds a 1e60 distance), so either pick is correct and
    both branches are kept; everywhere else this is a single selection."""
    out: set[tuple[int, ...]] = set()

    def walk(remaining: list[int], chosen: list[int]) -> None:
        if len(chosen) == len(dist) - 2 * f:
            out.add(tuple(sorted(chosen)))
            return
        sub = dist[np.ix_(remaining, remaining)]
        scores, totals = ref_scores(sub, f), sub.sum(axis=1)
        tied = np.flatnonzero(scores - scores.min() <= 1e-9 * scores.min())
        best = totals[tied].min()
        for t in tied[np.abs(totals[tied] - best) <= 1e-12 * best]:
            walk([r for r in remaining if r != remaining[t]], [*chosen, remaining[t]])

    walk(list(range(len(dist))), [])
    return out


def run(name: str, x: torch.Tensor, **params: int) -> tuple[int, ...]:
    rule = create_rule(name, params, num_clients=x.shape[0])
    res = rule(x, torch.ones(x.shape[0]), ctx=AggregationContext())
    return res.excluded


def kept(excluded: tuple[int, ...], n: int) -> list[int]:
    return sorted(set(range(n)) - set(excluded))


def assert_clear_order(scores: np.ndarray) -> None:
    """The test data must not hinge on near-ties: consecutive exact scores differ by > 5 %."""
    ordered = np.sort(scores)
    assert bool((ordered[1:] > ordered[:-1] * 1.05).all())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_distances_match_float64_reference_under_a_large_common_component(seed: int) -> None:
    x = shared_component_batch(seed)
    want = exact_sq_distances(x)
    got = pairwise_sq_distances(x)
    assert got.dtype == torch.float64
    assert torch.equal(got, got.T) and bool((torch.diagonal(got) == 0).all())
    assert max_relative_error(got, want) <= 1e-3


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_krum_family_selects_what_float64_krum_selects(seed: int) -> None:
    x = shared_component_batch(seed)
    dist = exact_sq_distances(x).numpy()
    f = (N - 3) // 2  # Krum's default f
    assert_clear_order(ref_scores(dist, f))

    assert kept(run("krum", x), N) == ref_multikrum(dist, f, 1)
    assert kept(run("krum", x, num_malicious=1), N) == ref_multikrum(dist, 1, 1)
    assert kept(run("multikrum", x), N) == ref_multikrum(dist, f, N - f)
    assert kept(run("multikrum", x, num_selected=3), N) == ref_multikrum(dist, f, 3)
    fb = (N - 3) // 4  # Bulyan's default f
    assert ref_bulyan_selections(dist, fb) == {tuple(kept(run("bulyan", x), N))}


def test_krum_returns_the_exactly_selected_row() -> None:
    x = shared_component_batch(3)
    dist = exact_sq_distances(x).numpy()
    (want,) = ref_multikrum(dist, (N - 3) // 2, 1)
    res = create_rule("krum", {}, num_clients=N)(x, torch.ones(N), ctx=AggregationContext())
    assert torch.equal(res.aggregate, x[want])


@pytest.mark.parametrize("position", [0, N // 2, N - 1])
@pytest.mark.parametrize("norm", [1e15, 1e30])
def test_one_huge_outlier_does_not_spoil_the_other_distances(position: int, norm: float) -> None:
    """An outlier (also as the first row, where centring on row 0 would fail) cannot move the
    robust centre: the other rows keep their precision, in the float32 GEMM (1e15) and after
    the float64 redo that an overflowing row forces (1e30)."""
    x = shared_component_batch(4)
    g = torch.Generator().manual_seed(5)
    direction = torch.randn(D, generator=g, dtype=torch.float64)
    x[position] = (norm * direction / direction.norm()).to(torch.float32)
    want = exact_sq_distances(x)
    got = pairwise_sq_distances(x)
    assert bool(torch.isfinite(got).all())
    others = [i for i in range(N) if i != position]
    sub = torch.tensor(others)
    assert max_relative_error(got[sub][:, sub], want[sub][:, sub]) <= 1e-3
    assert max_relative_error(got, want) <= 1e-3  # the outlier's own distances too

    dist = want.numpy()
    excluded = run("krum", x, num_malicious=1)
    assert position in excluded
    assert kept(excluded, N) == ref_multikrum(dist, 1, 1)
    assert kept(run("multikrum", x, num_malicious=1), N) == ref_multikrum(dist, 1, N - 1)
    assert tuple(kept(run("bulyan", x), N)) in ref_bulyan_selections(dist, 1)


def test_tight_cluster_far_from_the_median_is_refined_in_float64() -> None:
    """Three near-duplicates (colluding updates) at distance ~1 from seven honest rows: after
    median centring they still cancel (‖x_i − m‖² ≈ 1, ‖x_i − x_j‖² ≈ 1e-8), so those pairs
    are recomputed in float64."""
    g = torch.Generator().manual_seed(6)
    d = 2000
    honest = torch.randn(7, d, generator=g, dtype=torch.float64) * 0.1 / d**0.5
    target = torch.randn(d, generator=g, dtype=torch.float64)
    target /= target.norm()
    cluster = target + torch.randn(3, d, generator=g, dtype=torch.float64) * 1e-4 / d**0.5
    x = torch.cat([honest, cluster]).to(torch.float32)
    want = exact_sq_distances(x)
    assert max_relative_error(pairwise_sq_distances(x), want) <= 1e-3
