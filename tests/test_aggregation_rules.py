"""Robust aggregation rules: each against a straightforward loop-based reference on small
inputs, plus invariants (permutation invariance, FedAvg equality when nobody is excluded,
bounded output under an arbitrarily large outlier), preconditions and reproducibility."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fedledger.aggregation import AggregationContext, AggregationResult, create_rule, rule_names
from fedledger.aggregation._distances import cosine_similarity_matrix, pairwise_sq_distances
from fedledger.aggregation.cosine_filter import correlation_scores
from fedledger.aggregation.fedavg import weighted_mean
from fedledger.aggregation.foolsgold import HISTORY_KEY
from fedledger.errors import ConfigError

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True)
ROBUST = [
    "median",
    "trimmed_mean",
    "krum",
    "multikrum",
    "bulyan",
    "geomedian",
    "norm_clipping",
    "fltrust",
    "foolsgold",
    "flame",
]


def batch(seed: int, n: int, d: int, *, spread: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Updates around a common direction, and positive sample counts."""
    rng = np.random.default_rng(seed)
    center = rng.normal(size=d) * 2.0
    x = center + spread * rng.normal(size=(n, d))
    w = rng.integers(1, 50, size=n)
    return torch.tensor(x, dtype=torch.float32), torch.tensor(w, dtype=torch.float32)


def ctx(seed: int = 0, **kw: Any) -> AggregationContext:
    return AggregationContext(generator=torch.Generator().manual_seed(seed), **kw)


def run(
    name: str, x: torch.Tensor, w: torch.Tensor, c: AggregationContext | None = None, **params: Any
) -> AggregationResult:
    if name == "fltrust" and (c is None or c.reference is None):
        c = ctx(reference=x.mean(dim=0))
    return create_rule(name, params, num_clients=x.shape[0])(x, w, ctx=c or ctx())


def close(a: torch.Tensor, b: Any, *, scale: float = 1.0, tol: float = 1e-4) -> bool:
    bt = torch.as_tensor(b, dtype=torch.float64)
    return bool(torch.allclose(a.to(torch.float64), bt, rtol=tol, atol=tol * scale))


# ------------------------------------------------------------------ references (loops, float64


def ref_krum_scores(x: np.ndarray, f: int) -> np.ndarray:
    n = len(x)
    k = min(max(1, n - f - 2), n - 1)
    scores = []
    for i in range(n):
        dists = sorted(float(np.sum((x[i] - x[j]) ** 2)) for j in range(n) if j != i)
        scores.append(sum(dists[:k]))
    return np.array(scores)


def ref_trimmed_mean(x: np.ndarray, k: int) -> np.ndarray:
    n, d = x.shape
    out = np.empty(d)
    for j in range(d):
        col = sorted(x[:, j])
        out[j] = np.mean(col[k : n - k])
    return out


def ref_bulyan(x: np.ndarray, f: int) -> tuple[np.ndarray, list[int]]:
    n, d = x.shape
    remaining, chosen = list(range(n)), []
    for _ in range(n - 2 * f):
        sub = x[remaining]
        scores = ref_krum_scores(sub, f)
        total = [sum(float(np.sum((a - b) ** 2)) for b in sub) for a in sub]
        best = remaining[
            min(range(len(sub)), key=lambda i: (round(float(scores[i]), 9), total[i], i))
        ]
        chosen.append(best)
        remaining.remove(best)
    sel = x[sorted(chosen)]
    beta = len(chosen) - 2 * f
    out = np.empty(d)
    for j in range(d):
        med = np.median(sel[:, j])
        order = sorted(range(len(sel)), key=lambda i: abs(sel[i, j] - med))
        out[j] = np.mean([sel[i, j] for i in order[:beta]])
    return out, sorted(chosen)


def ref_geomedian(x: np.ndarray, a: np.ndarray, iters: int = 2000) -> np.ndarray:
    v = (a[:, None] * x).sum(0) / a.sum()
    for _ in range(iters):
        dist = np.maximum(np.linalg.norm(x - v, axis=1), 1e-12)
        beta = a / dist
        v = (beta[:, None] * x).sum(0) / beta.sum()
    return v


def geo_objective(x: np.ndarray, a: np.ndarray, v: np.ndarray) -> float:
    return float((a * np.linalg.norm(x - v, axis=1)).sum())


def ref_foolsgold(h: np.ndarray) -> np.ndarray:
    """The authors' reference code (DistributedML/FoolsGold), without feature importance."""
    n = len(h)
    norms = np.linalg.norm(h, axis=1)
    cs = (h @ h.T) / np.outer(norms, norms)
    np.fill_diagonal(cs, 0.0)  # the authors subtract eye(n); exact zeros avoid 1e-16 noise
    maxcs = np.max(cs, axis=1)
    for i in range(n):
        for j in range(n):
            if i != j and maxcs[i] < maxcs[j]:
                cs[i][j] = cs[i][j] * maxcs[i] / maxcs[j]
    wv = 1 - np.max(cs, axis=1)
    wv[wv > 1] = 1
    wv[wv < 0] = 0
    wv = wv / np.max(wv)
    wv[wv == 1] = 0.99
    with np.errstate(divide="ignore"):
        wv = np.log(wv / (1 - wv)) + 0.5
    wv[(np.isinf(wv) + wv > 1)] = 1
    wv[wv < 0] = 0
    return wv


# ------------------------------------------------------------------ registry, helpers


def test_every_rule_is_registered() -> None:
    assert set(ROBUST) | {"fedavg"} <= set(rule_names())


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 12), d=st.integers(1, 40))
@SETTINGS
def test_distance_helpers_match_loops(seed: int, n: int, d: int) -> None:
    x, _ = batch(seed, n, d)
    xn = x.double().numpy()
    dist = np.array([[np.sum((a - b) ** 2) for b in xn] for a in xn])
    # the Gram form loses ~1e-7 of ‖x‖² to cancellation (float32 GEMM), not of ‖x − y‖²
    scale = float(max(dist.max(), (xn**2).sum(1).max()))
    assert close(pairwise_sq_distances(x), dist, scale=scale, tol=1e-5)
    cos = np.array([[a @ b / (np.linalg.norm(a) * np.linalg.norm(b)) for b in xn] for a in xn])
    assert close(cosine_similarity_matrix(x), cos, tol=1e-4)


# ------------------------------------------------------------------ each rule vs its reference


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 15), d=st.integers(1, 30))
@SETTINGS
def test_median_matches_numpy(seed: int, n: int, d: int) -> None:
    x, w = batch(seed, n, d)
    res = run("median", x, w)
    assert close(res.aggregate, np.median(x.double().numpy(), axis=0), tol=1e-6)
    assert math.isclose(float(res.weights.sum()), 1.0, rel_tol=1e-5)


def test_median_even_n_is_mean_of_middle_values_across_blocks() -> None:
    x = torch.randn(6, 10_000, generator=torch.Generator().manual_seed(3))  # > one column block
    res = run("median", x, torch.ones(6))
    assert close(res.aggregate, np.median(x.numpy(), axis=0), tol=1e-6)


@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 15),
    d=st.integers(1, 30),
    beta=st.floats(0.0, 0.49),
)
@SETTINGS
def test_trimmed_mean_matches_loop(seed: int, n: int, d: int, beta: float) -> None:
    x, w = batch(seed, n, d)
    k = int(np.floor(beta * n + 1e-9))
    res = run("trimmed_mean", x, w, beta=beta)
    assert close(res.aggregate, ref_trimmed_mean(x.double().numpy(), k), scale=3.0, tol=1e-5)
    if k > 0:  # every kept value is counted once per coordinate
        assert int(res.scores.sum()) >= (n - 2 * k) * d  # type: ignore[union-attr]


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(3, 14), d=st.integers(1, 30))
@SETTINGS
def test_krum_matches_loop(seed: int, n: int, d: int) -> None:
    x, w = batch(seed, n, d)
    f = (n - 3) // 2
    ref = ref_krum_scores(x.double().numpy(), f)
    res = run("krum", x, w, num_malicious=f)
    assert res.scores is not None and close(res.scores, ref, scale=float(ref.max()), tol=1e-4)
    (chosen,) = [i for i in range(n) if i not in res.excluded]
    assert ref[chosen] <= ref.min() * (1 + 1e-4) + 1e-6
    assert torch.equal(res.aggregate, x[chosen])
    assert res.weights[chosen] == 1 and float(res.weights.sum()) == 1


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(3, 14), d=st.integers(1, 30), data=st.data())
@SETTINGS
def test_multikrum_selects_lowest_scores_and_averages_them(
    seed: int, n: int, d: int, data: st.DataObject
) -> None:
    x, w = batch(seed, n, d)
    f = data.draw(st.integers(0, (n - 3) // 2))
    m = data.draw(st.integers(1, n))
    ref = ref_krum_scores(x.double().numpy(), f)
    res = run("multikrum", x, w, num_malicious=f, num_selected=m)
    kept = [i for i in range(n) if i not in res.excluded]
    dropped = list(res.excluded)
    assert len(kept) == m
    if dropped:
        assert ref[kept].max() <= ref[dropped].min() * (1 + 1e-4) + 1e-6
    wk = w.double().numpy()[kept]
    expected = (wk[:, None] * x.double().numpy()[kept]).sum(0) / wk.sum()
    assert close(res.aggregate, expected, scale=3.0, tol=1e-5)


@given(seed=st.integers(0, 2**32 - 1), f=st.integers(0, 2), extra=st.integers(0, 4))
@SETTINGS
def test_bulyan_matches_loop(seed: int, f: int, extra: int) -> None:
    n = 4 * f + 3 + extra
    x, w = batch(seed, n, 12)
    expected, chosen = ref_bulyan(x.double().numpy(), f)
    res = run("bulyan", x, w, num_malicious=f)
    assert sorted(set(range(n)) - set(res.excluded)) == chosen
    assert close(res.aggregate, expected, scale=3.0, tol=1e-5)
    assert math.isclose(float(res.weights.sum()), 1.0, rel_tol=1e-5)


def test_bulyan_coordinate_step_spans_several_blocks() -> None:
    x, w = batch(7, 7, 9000)  # three column blocks
    res = run("bulyan", x, w, num_malicious=1)
    chosen = sorted(set(range(7)) - set(res.excluded))
    assert len(chosen) == 5  # θ = n − 2f
    cols = list(range(40)) + list(range(8960, 9000))
    sub = x[chosen][:, cols].double().numpy()
    beta = len(chosen) - 2
    want = [np.mean(sorted(c, key=lambda v: abs(v - np.median(c)))[:beta]) for c in sub.T]
    assert close(res.aggregate[cols], want, scale=3.0, tol=1e-5)


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(3, 12), d=st.integers(1, 20))
@SETTINGS
def test_geomedian_minimises_weighted_distance_sum(seed: int, n: int, d: int) -> None:
    x, w = batch(seed, n, d)
    w = 20.0 + w % 10  # no client near half the weight: there the objective is nearly flat
    xn, a = x.double().numpy(), w.double().numpy() / w.double().numpy().sum()
    res = run("geomedian", x, w, tol=1e-10, max_iter=1000)
    ref = ref_geomedian(xn, a)
    got = res.aggregate.double().numpy()
    assert geo_objective(xn, a, got) <= geo_objective(xn, a, ref) * (1 + 1e-3) + 1e-6
    if n >= 3 and d >= 3:  # strictly convex objective: the minimiser is unique and stable
        assert np.linalg.norm(got - ref) <= 5e-2 * (1 + np.linalg.norm(ref))
    assert math.isclose(float(res.weights.sum()), 1.0, rel_tol=1e-5)


@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 12),
    d=st.integers(1, 20),
    bound=st.one_of(st.none(), st.floats(0.1, 20.0)),
)
@SETTINGS
def test_norm_clipping_matches_loop(seed: int, n: int, d: int, bound: float | None) -> None:
    x, w = batch(seed, n, d)
    xn, wn = x.double().numpy(), w.double().numpy()
    norms = np.linalg.norm(xn, axis=1)
    m = float(np.median(norms)) if bound is None else bound
    expected = sum(wn[i] / wn.sum() * xn[i] * min(1.0, m / norms[i]) for i in range(n))
    res = run("norm_clipping", x, w, max_norm=bound)
    assert close(res.aggregate, expected, scale=m, tol=1e-5)
    assert np.linalg.norm(res.aggregate.double().numpy()) <= m * (1 + 1e-5)


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 12), d=st.integers(2, 20))
@SETTINGS
def test_fltrust_matches_loop(seed: int, n: int, d: int) -> None:
    x, w = batch(seed, n, d, spread=3.0)
    g0 = torch.tensor(np.random.default_rng(seed + 1).normal(size=d), dtype=torch.float32)
    xn, gn = x.double().numpy(), g0.double().numpy()
    ts, parts = [], []
    for i in range(n):
        cos = xn[i] @ gn / (np.linalg.norm(xn[i]) * np.linalg.norm(gn))
        ts.append(max(0.0, cos))
        parts.append(max(0.0, cos) * np.linalg.norm(gn) / np.linalg.norm(xn[i]) * xn[i])
    expected = sum(parts) / sum(ts) if sum(ts) > 0 else np.zeros(d)
    res = run("fltrust", x, w, ctx(reference=g0))
    assert close(res.aggregate, expected, scale=float(np.linalg.norm(gn)), tol=1e-4)
    assert set(res.excluded) == {i for i in range(n) if ts[i] == 0}
    assert np.linalg.norm(res.aggregate.numpy()) <= np.linalg.norm(gn) * (1 + 1e-5)


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 10), d=st.integers(2, 20))
@SETTINGS
def test_foolsgold_matches_reference_code(seed: int, n: int, d: int) -> None:
    rng = np.random.default_rng(seed)
    x = torch.tensor(rng.normal(size=(n, d)), dtype=torch.float32)
    past = torch.tensor(rng.normal(size=(n, d)), dtype=torch.float32)
    w = torch.ones(n)
    res = run("foolsgold", x, w, ctx(history={HISTORY_KEY: past}))
    hist = (past + x).double().numpy()
    alpha = ref_foolsgold(hist)
    assert res.scores is not None and close(res.scores, alpha, tol=1e-4)
    assert res.state is not None and torch.equal(res.state[HISTORY_KEY], past + x)
    if alpha.sum() > 0:
        expected = (alpha[:, None] * x.double().numpy()).sum(0) / alpha.sum()
        assert close(res.aggregate, expected, scale=3.0, tol=1e-3)


def test_foolsgold_zeroes_sybils_and_keeps_history() -> None:
    g = torch.Generator().manual_seed(0)
    honest = torch.randn(6, 200, generator=g)
    sybil = torch.randn(1, 200, generator=g).expand(4, 200) + 1e-3 * torch.randn(
        4, 200, generator=g
    )
    x = torch.cat([honest, sybil])
    res = run("foolsgold", x, torch.ones(10))
    assert set(res.excluded) == {6, 7, 8, 9}
    assert float(res.weights[6:].sum()) == 0.0
    assert res.state is not None
    second = run("foolsgold", x, torch.ones(10), ctx(history=res.state))
    assert second.state is not None and torch.allclose(second.state[HISTORY_KEY], 2 * x)


def test_flame_admits_majority_cluster_clips_and_adds_noise() -> None:
    g = torch.Generator().manual_seed(1)
    direction = torch.randn(300, generator=g)
    honest = direction + 0.3 * torch.randn(7, 300, generator=g)
    honest[0] *= 5.0  # a benign but long update: admitted, clipped to the median norm
    attackers = -direction + 0.3 * torch.randn(3, 300, generator=g)
    x, w = torch.cat([honest, attackers]), torch.arange(1.0, 11.0)
    res = run("flame", x, w, noise_lambda=0.0)
    # the attackers are HDBSCAN noise or a minority cluster; an honest straggler may be noise too
    admitted = sorted(set(range(10)) - set(res.excluded))
    assert {7, 8, 9} <= set(res.excluded) and len(admitted) >= 6 and 0 in admitted
    xn, wn = x.double().numpy(), w.double().numpy()
    norms = np.linalg.norm(xn, axis=1)
    s = np.median(norms)
    expected = sum(wn[i] * min(1.0, s / norms[i]) * xn[i] for i in admitted) / wn[admitted].sum()
    assert close(res.aggregate, expected, scale=float(s), tol=1e-4)
    noisy = run("flame", x, w, ctx(5), noise_lambda=0.01)
    again = run("flame", x, w, ctx(5), noise_lambda=0.01)
    assert torch.equal(noisy.aggregate, again.aggregate)
    noise_std = float((noisy.aggregate - res.aggregate).std())
    assert 0.5 * 0.01 * s < noise_std < 1.5 * 0.01 * s


# ------------------------------------------------------------------ invariants


def _params_for(name: str) -> dict[str, Any]:
    """Noise off, so that two runs can be compared."""
    return {"noise_lambda": 0.0} if name == "flame" else {}


@given(seed=st.integers(0, 2**32 - 1), name=st.sampled_from(ROBUST + ["fedavg"]), data=st.data())
@SETTINGS
def test_permutation_invariance(seed: int, name: str, data: st.DataObject) -> None:
    n = data.draw(st.integers(7, 12))
    d = data.draw(st.integers(2, 25))
    x, w = batch(seed, n, d)
    perm = torch.tensor(data.draw(st.permutations(list(range(n)))))
    params = _params_for(name)
    hist = torch.tensor(np.random.default_rng(seed).normal(size=(n, d)), dtype=torch.float32)
    c = ctx(3, reference=x.mean(0), history={HISTORY_KEY: hist})
    cp = ctx(3, reference=x.mean(0), history={HISTORY_KEY: hist[perm]})
    a = run(name, x, w, c, **params)
    b = run(name, x[perm], w[perm], cp, **params)
    assert close(b.aggregate, a.aggregate, scale=3.0, tol=1e-4)
    assert {int(perm[i]) for i in b.excluded} == set(a.excluded)
    assert close(b.weights, a.weights[perm], tol=1e-4)


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(3, 12), d=st.integers(1, 25))
@SETTINGS
def test_equal_to_fedavg_when_nobody_is_excluded(seed: int, n: int, d: int) -> None:
    x, w = batch(seed, n, d)
    ones = torch.ones(n)
    fedavg = weighted_mean(x, w)
    assert close(run("multikrum", x, w, num_malicious=0, num_selected=n).aggregate, fedavg)
    assert close(run("norm_clipping", x, w, max_norm=1e9).aggregate, fedavg)
    plain = weighted_mean(x, ones)
    assert close(run("trimmed_mean", x, ones, beta=0.0).aggregate, plain)
    assert close(run("bulyan", x, ones, num_malicious=0).aggregate, plain)
    cases: list[tuple[str, dict[str, Any]]] = [
        ("multikrum", {"num_selected": n}),
        ("trimmed_mean", {"beta": 0.0}),
    ]
    for name, params in cases:
        assert run(name, x, w, **params).excluded == ()


BOUNDED = ["median", "trimmed_mean", "krum", "multikrum", "bulyan", "geomedian", "norm_clipping"]


@given(
    seed=st.integers(0, 2**32 - 1),
    name=st.sampled_from(BOUNDED + ["fltrust", "flame"]),
    exponent=st.integers(3, 30),
    sign=st.sampled_from([-1.0, 1.0]),
    data=st.data(),
)
@SETTINGS
def test_bounded_output_under_huge_outlier(
    seed: int, name: str, exponent: int, sign: float, data: st.DataObject
) -> None:
    n = data.draw(st.integers(7, 12))
    d = data.draw(st.integers(1, 20))
    x, w = batch(seed, n, d)
    bad = data.draw(st.integers(0, n - 1))
    direction = torch.randn(d, generator=torch.Generator().manual_seed(seed % 1000))
    x[bad] = sign * (10.0**exponent) * (direction / direction.norm().clamp_min(1e-6) + 0.1)
    # it also claims as many samples as the largest benign client (a weighted rule such as RFA
    # is only robust while the liars hold less than half of the claimed samples)
    w[bad] = w.max()
    benign = torch.cat([x[:bad], x[bad + 1 :]])
    params = _params_for(name)
    if name == "trimmed_mean":
        params["beta"] = 1.0 / n + 1e-6
    if name in ("krum", "multikrum", "bulyan"):
        params["num_malicious"] = 1
    res = run(name, x, w, ctx(reference=benign.mean(0)), **params)
    agg = res.aggregate.double()
    assert bool(torch.isfinite(agg).all())
    bmax = float(benign.double().norm(dim=1).max())
    if name in ("median", "trimmed_mean", "bulyan"):  # inside the benign box, per coordinate
        lo, hi = benign.double().min(0).values, benign.double().max(0).values
        assert bool(((agg >= lo - 1e-5) & (agg <= hi + 1e-5)).all())
    elif name in ("krum", "multikrum"):
        assert bad in res.excluded and float(agg.norm()) <= bmax * (1 + 1e-5)
    else:  # geomedian, norm_clipping (median bound), fltrust, flame
        assert float(agg.norm()) <= 3 * bmax


# ------------------------------------------------------------------ preconditions, errors


@pytest.mark.parametrize(
    "name,params,n",
    [
        ("bulyan", {"num_malicious": 2}, 10),  # needs 4f + 3 = 11
        ("bulyan", {}, 2),
        ("krum", {"num_malicious": 3}, 8),  # needs 2f + 3 = 9
        ("multikrum", {"num_malicious": 1}, 4),
        ("multikrum", {"num_selected": 11}, 10),
        ("multikrum", {"num_selected": 0}, 10),
        ("krum", {"num_malicious": -1}, 10),
        ("krum", {"num_malicious": 1.5}, 10),
        ("krum", {"num_malicious": True}, 10),
        ("trimmed_mean", {"beta": 0.5}, 10),
        ("trimmed_mean", {"beta": -0.1}, 10),
        ("trimmed_mean", {"beta": "a lot"}, 10),
        ("geomedian", {"nu": 0.0}, 10),
        ("geomedian", {"max_iter": 0}, 10),
        ("norm_clipping", {"max_norm": -1.0}, 10),
        ("norm_clipping", {"noise_std": -1.0}, 10),
        ("flame", {"min_cluster_size": 11}, 10),
        ("foolsgold", {"confidence": 0.0}, 10),
        ("median", {"beta": 0.1}, 10),  # unknown parameter
        ("fltrust", {"reference": 1}, 10),
    ],
)
def test_precondition_failures_are_config_errors(name: str, params: dict[str, Any], n: int) -> None:
    with pytest.raises(ConfigError):
        create_rule(name, params, num_clients=n)


def test_preconditions_accept_the_boundary() -> None:
    create_rule("bulyan", {"num_malicious": 2}, num_clients=11)
    create_rule("krum", {"num_malicious": 3}, num_clients=9)
    create_rule("multikrum", {"num_malicious": 3, "num_selected": 9}, num_clients=9)


def test_runtime_shortfall_and_missing_inputs_are_config_errors() -> None:
    x, w = batch(0, 6, 5)
    rule = create_rule("bulyan", {"num_malicious": 1}, num_clients=7)
    with pytest.raises(ConfigError, match="4f \\+ 3"):
        rule(x, w, ctx=ctx())  # a client dropped out: 6 < 7
    with pytest.raises(ConfigError, match="reference"):
        create_rule("fltrust", {}, num_clients=6)(x, w, ctx=AggregationContext())
    with pytest.raises(ConfigError, match="generator"):
        create_rule("norm_clipping", {"noise_std": 0.1}, num_clients=6)(
            x, w, ctx=AggregationContext()
        )


@pytest.mark.parametrize("name,params", [("norm_clipping", {"noise_std": 0.5}), ("flame", {})])
def test_noisy_rules_are_reproducible_from_the_round_generator(
    name: str, params: dict[str, Any]
) -> None:
    x, w = batch(1, 8, 50)
    a = run(name, x, w, ctx(11), **params).aggregate
    b = run(name, x, w, ctx(11), **params).aggregate
    c = run(name, x, w, ctx(12), **params).aggregate
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_inputs_are_not_modified() -> None:
    x, w = batch(2, 9, 30)
    x0, w0 = x.clone(), w.clone()
    for name in ROBUST:
        run(name, x, w)
    assert torch.equal(x, x0) and torch.equal(w, w0)


def test_cosine_filter_excludes_zero_and_noise_pseudo_updates() -> None:
    g = torch.Generator().manual_seed(0)
    direction = torch.randn(2000, generator=g)
    honest = direction + 0.5 * torch.randn(
        8, 2000, generator=g
    )  # correlated, as trained updates are
    noise = torch.randn(2, 2000, generator=g) * honest.norm(dim=1).median()
    zero = torch.zeros(1, 2000)
    x = torch.cat([honest, noise, zero])
    w = torch.ones(11)
    res = create_rule("cosine_filter", {}, num_clients=11)(x, w, ctx=AggregationContext())
    assert res.excluded == (8, 9, 10)
    assert torch.allclose(res.aggregate, honest.mean(dim=0), atol=1e-5)
    assert res.scores is not None and float(res.scores[10]) == 0.0
    assert float(res.scores[:8].min()) > 8.0 > float(res.scores[8:].max())
    # with nobody flagged it is FedAvg
    res = create_rule("cosine_filter", {"min_score": 0.0}, num_clients=11)(
        x, w, ctx=AggregationContext()
    )
    assert res.excluded == () and torch.allclose(res.aggregate, x.mean(dim=0), atol=1e-5)


def test_cosine_filter_score_is_chance_level_for_independent_noise() -> None:
    g = torch.Generator().manual_seed(1)
    noise = torch.randn(30, 20_000, generator=g)
    s = correlation_scores(noise)
    # max of 29 |N(0, 1)|: about 2.2 on average, and far below 8
    assert 1.0 < float(s.mean()) < 3.5 and float(s.max()) < 5.0
    same = torch.cat([noise[:1], noise[:1]])  # identical rows: |cos| = 1
    assert torch.allclose(
        correlation_scores(same), torch.full((2,), 20_000**0.5, dtype=torch.float64)
    )
