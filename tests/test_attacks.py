"""Attacks change updates / data exactly as their papers define; config, selection, metrics."""

from __future__ import annotations

from statistics import NormalDist
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fedledger.attacks import (
    AttackConfig,
    AttackContext,
    Backdoor,
    apply_trigger,
    attack_names,
    attack_success_rate,
    create_attack,
    detection_counts,
    detection_scores,
    precision_recall_f1,
    select_malicious,
)
from fedledger.attacks.alie import alie_z
from fedledger.attacks.sign_flip import SignFlip
from fedledger.errors import ConfigError

SETTINGS = settings(max_examples=30, deadline=None, derandomize=True)
NAMES = [
    "label_flip",
    "feature_noise",
    "inject",
    "sign_flip",
    "gaussian",
    "scaling",
    "alie",
    "ipm",
    "min_max",
    "min_sum",
    "backdoor",
    "free_rider",
    "sybil",
]
MODEL_ATTACKS = [n for n in NAMES if create_attack(n).poisons_updates]
DATA_ATTACKS = [n for n in NAMES if create_attack(n).poisons_data]


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def updates(seed: int, m: int, b: int, d: int) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    center = rng.normal(size=d)
    mal = center + rng.normal(size=(m, d))
    ben = center + rng.normal(size=(b, d))
    return torch.tensor(mal, dtype=torch.float32), torch.tensor(ben, dtype=torch.float32)


def poison(name: str, mal: torch.Tensor, ben: torch.Tensor, **params: Any) -> torch.Tensor:
    ctx = AttackContext(round=3, num_participants=mal.shape[0] + ben.shape[0])
    return create_attack(name, params).poison_updates(mal, ben, generator=gen(1), ctx=ctx)


def images(n: int = 40, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = gen(seed)
    return torch.rand(n, 1, 8, 8, generator=g) * 0.5, torch.randint(0, 10, (n,), generator=g)


# ------------------------------------------------------------------ registry and config


def test_every_attack_is_registered() -> None:
    assert attack_names() == sorted(NAMES)


@pytest.mark.parametrize(
    "data",
    [
        {"name": "alie", "fraction": 0.2, "params": {"bogus": 1}},  # unknown parameter
        {"name": "sign_flip", "fraction": 0.2, "params": {"scale": -1.0}},  # out of range
        {"name": "gaussian", "fraction": 0.2, "params": {"mode": "shout"}},
        {"name": "nope", "fraction": 0.2},  # unknown attack
        {"name": "alie", "fraction": 0.2, "z": 1.0},  # parameter outside params
        {"name": "alie"},  # neither fraction nor clients
        {"name": "alie", "fraction": 0.2, "clients": [1]},  # both
        {"name": "alie", "fraction": 1.5},
        {"name": "alie", "clients": [1, 1]},
        {"name": "alie", "clients": [-1]},
        {"name": "alie", "fraction": 0.2, "start_round": -1},
    ],
)
def test_bad_attack_config_is_config_error(data: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        AttackConfig(**data)
    with pytest.raises(ConfigError):
        AttackConfig.from_mapping(data)


def test_attack_config_builds_the_attack() -> None:
    cfg = AttackConfig.from_mapping(
        {"name": "sign_flip", "fraction": 0.3, "start_round": 2, "params": {"scale": 4.0}}
    )
    attack = cfg.build()
    assert attack.name == "sign_flip" and attack.poisons_updates and not attack.poisons_data
    assert isinstance(attack, SignFlip) and attack.scale == 4.0


@given(n=st.integers(1, 200), fraction=st.floats(0.0, 1.0), seed=st.integers(0, 2**31))
@SETTINGS
def test_select_malicious_is_seeded_and_sized(n: int, fraction: float, seed: int) -> None:
    cfg = AttackConfig(name="sign_flip", fraction=fraction)
    ids = select_malicious(n, cfg, seed)
    assert ids == sorted(set(ids)) and all(0 <= i < n for i in ids)
    assert len(ids) == min(n, int(np.floor(fraction * n + 0.5 + 1e-9)))
    assert select_malicious(n, cfg, seed) == ids


def test_select_malicious_explicit_ids_and_seed_dependence() -> None:
    assert select_malicious(10, AttackConfig(name="ipm", clients=[7, 2]), 0) == [2, 7]
    with pytest.raises(ConfigError):
        select_malicious(5, AttackConfig(name="ipm", clients=[7]), 0)
    cfg = AttackConfig(name="ipm", fraction=0.3)
    assert len({tuple(select_malicious(20, cfg, s)) for s in range(10)}) > 1


# ------------------------------------------------------------------ model poisoning


@given(
    seed=st.integers(0, 2**31),
    m=st.integers(1, 5),
    d=st.integers(1, 30),
    k=st.floats(0.1, 100.0),
)
@SETTINGS
def test_sign_flip_and_scaling(seed: int, m: int, d: int, k: float) -> None:
    mal, ben = updates(seed, m, 4, d)
    assert torch.allclose(poison("sign_flip", mal, ben, scale=k), -k * mal)
    assert torch.allclose(poison("scaling", mal, ben, factor=k), k * mal)


def test_alie_z_follows_the_paper() -> None:
    # s = floor(n/2 + 1) - m, z = Phi^-1((n - s) / n)
    assert alie_z(50, 12) == pytest.approx(NormalDist().inv_cdf(36 / 50))
    assert alie_z(20, 4) == pytest.approx(NormalDist().inv_cdf(13 / 20))
    assert alie_z(20, 4) == pytest.approx(0.3853, abs=1e-4)
    assert alie_z(100, 20) == pytest.approx(NormalDist().inv_cdf(69 / 100))


@given(seed=st.integers(0, 2**31), m=st.integers(1, 6), b=st.integers(2, 12), d=st.integers(1, 30))
@SETTINGS
def test_alie_is_mean_minus_z_std(seed: int, m: int, b: int, d: int) -> None:
    mal, ben = updates(seed, m, b, d)
    out = poison("alie", mal, ben)
    bn = ben.double().numpy()
    expected = bn.mean(0) - alie_z(m + b, m) * bn.std(0)
    assert out.shape == (m, d)
    assert np.allclose(out.numpy(), expected[None, :], atol=1e-5)
    fixed = poison("alie", mal, ben, z=1.5)
    assert np.allclose(fixed.numpy(), (bn.mean(0) - 1.5 * bn.std(0))[None, :], atol=1e-5)
    # against_mean: each coordinate moves z std against the sign of the benign mean
    against = poison("alie", mal, ben, z=1.5, against_mean=True)
    mu, sd = bn.mean(0), bn.std(0)
    assert np.allclose(against.numpy(), (mu - 1.5 * sd * np.sign(mu))[None, :], atol=1e-5)
    moved = np.sign(against.numpy()[0] - mu)
    assert bool((moved * np.sign(mu) <= 0).all())  # never in the mean's direction


@given(
    seed=st.integers(0, 2**31), m=st.integers(1, 6), b=st.integers(1, 12), eps=st.floats(0.01, 20)
)
@SETTINGS
def test_ipm_is_minus_epsilon_benign_mean(seed: int, m: int, b: int, eps: float) -> None:
    mal, ben = updates(seed, m, b, 10)
    out = poison("ipm", mal, ben, epsilon=eps)
    expected = -eps * ben.double().mean(0)
    assert np.allclose(out.numpy(), expected.numpy()[None, :], atol=1e-5 * (1 + eps))
    # its inner product with the benign mean is negative
    assert float(out[0].double() @ ben.double().mean(0)) < 0


def sq(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sum((a - b) ** 2))


def paper_binary_search(bn: np.ndarray, dev: np.ndarray, ok: Any) -> float:
    """The authors' search for gamma (Shejwalkar & Houmansadr's released code), run long."""
    lam, step, succ = 50.0, 50.0, 0.0
    while abs(succ - lam) > 1e-9:
        if ok(bn.mean(0) - lam * dev):
            succ = lam
            lam = lam + step / 2
        else:
            lam = lam - step / 2
        step /= 2
    return succ


def mean_and_direction(bn: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """The benign mean and the paper's perturbation direction of that kind."""
    mu = bn.mean(0)
    dev = {"unit_vec": mu / np.linalg.norm(mu), "std": bn.std(0), "sign": np.sign(mu)}[kind]
    return mu, dev


AGR_CASES = given(
    seed=st.integers(0, 2**31),
    b=st.integers(2, 10),
    d=st.integers(1, 20),
    kind=st.sampled_from(["unit_vec", "std", "sign"]),
)


@AGR_CASES
@SETTINGS
def test_min_max_meets_its_distance_constraint(seed: int, b: int, d: int, kind: str) -> None:
    mal, ben = updates(seed, 3, b, d)
    out = poison("min_max", mal, ben, perturbation=kind)
    assert torch.equal(out[0], out[1]) and torch.equal(out[0], out[2])
    bn, p = ben.double().numpy(), out[0].double().numpy()
    limit = max(sq(x, y) for x in bn for y in bn)
    worst = max(sq(p, x) for x in bn)
    assert worst <= limit * (1 + 1e-5) + 1e-6
    mu, dev = mean_and_direction(bn, kind)
    gamma = paper_binary_search(bn, dev, lambda q: max(sq(q, x) for x in bn) <= limit)
    assert np.allclose(p, mu - gamma * dev, atol=1e-4 * (1 + gamma))


@AGR_CASES
@SETTINGS
def test_min_sum_meets_its_distance_constraint(seed: int, b: int, d: int, kind: str) -> None:
    mal, ben = updates(seed, 2, b, d)
    out = poison("min_sum", mal, ben, perturbation=kind)
    bn, p = ben.double().numpy(), out[0].double().numpy()
    limit = max(sum(sq(x, y) for y in bn) for x in bn)
    total = sum(sq(p, x) for x in bn)
    assert total <= limit * (1 + 1e-5) + 1e-6
    mu, dev = mean_and_direction(bn, kind)
    gamma = paper_binary_search(bn, dev, lambda q: sum(sq(q, x) for x in bn) <= limit)
    assert np.allclose(p, mu - gamma * dev, atol=1e-4 * (1 + gamma))
    if gamma > 0:  # the largest such gamma: the constraint is tight
        assert total == pytest.approx(limit, rel=1e-4)


def test_gaussian_replaces_or_adds_seeded_noise() -> None:
    mal, ben = updates(0, 4, 4, 20_000)
    out = poison("gaussian", mal, ben, std=3.0)
    assert out.shape == mal.shape and abs(float(out.std()) - 3.0) < 0.05
    assert abs(float(out.mean())) < 0.05
    assert torch.equal(out, poison("gaussian", mal, ben, std=3.0))
    added = poison("gaussian", mal, ben, std=3.0, mode="add")
    assert torch.allclose(added - mal, out, atol=1e-5)


def test_free_riders_send_pseudo_updates_without_training() -> None:
    mal, ben = torch.zeros(3, 50), updates(1, 1, 6, 50)[1]
    attack = create_attack("free_rider", {"mode": "noise", "noise_scale": 2.0})
    assert not attack.trains
    ctx = AttackContext(round=1)
    noise = attack.poison_updates(mal, ben, generator=gen(), ctx=ctx)
    typical = float(torch.quantile(ben.norm(dim=1), 0.5))
    assert torch.allclose(noise.norm(dim=1), torch.full((3,), 2 * typical), rtol=1e-5)
    assert not torch.equal(noise[0], noise[1])
    zero = create_attack("free_rider", {"mode": "zero"}).poison_updates(
        mal, ben, generator=gen(), ctx=ctx
    )
    assert torch.equal(zero, torch.zeros(3, 50))
    prev = torch.arange(50.0)
    stale = create_attack("free_rider", {"mode": "stale"})
    out = stale.poison_updates(
        mal, ben, generator=gen(), ctx=AttackContext(previous_global_update=prev)
    )
    assert torch.equal(out, prev.expand(3, 50))
    assert torch.equal(stale.poison_updates(mal, ben, generator=gen(), ctx=ctx), zero)


def test_sybils_send_coordinated_near_identical_updates() -> None:
    mal, ben = updates(2, 5, 5, 400)
    out = poison("sybil", mal, ben, scale=2.0, jitter=0.01)
    base = 2.0 * mal.double().mean(0)
    cos = torch.nn.functional.cosine_similarity(out[:, None, :], out[None, :, :], dim=-1)
    assert float(cos.min()) > 0.999
    assert torch.allclose(out.double().mean(0), base, atol=0.05)
    assert not torch.equal(out[0], out[1])
    x, y = images()
    _, yp = create_attack("sybil", {"target_label": 3}).poison_data(
        x, y, generator=gen(), num_classes=10, input_shape=(1, 8, 8)
    )
    assert bool((yp == 3).all())


def test_backdoor_boosts_by_n_over_eta() -> None:
    mal, ben = updates(3, 2, 18, 10)
    out = poison("backdoor", mal, ben, server_lr=1.0)
    assert torch.allclose(out, mal * (20 / (1.0 * 2)))
    assert torch.allclose(poison("backdoor", mal, ben, boost=1.0), mal)
    assert torch.allclose(poison("backdoor", mal, ben, server_lr=2.0), mal * 5.0)


@given(name=st.sampled_from(MODEL_ATTACKS), m=st.integers(1, 4), b=st.integers(0, 6))
@SETTINGS
def test_model_attacks_return_m_rows_and_leave_inputs_alone(name: str, m: int, b: int) -> None:
    mal, ben = updates(4, m, b, 12)
    mal0, ben0 = mal.clone(), ben.clone()
    out = poison(name, mal, ben)
    assert out.shape == (m, 12) and out.dtype == torch.float32
    assert bool(torch.isfinite(out).all())
    assert torch.equal(mal, mal0) and torch.equal(ben, ben0)


# ------------------------------------------------------------------ data poisoning


@given(seed=st.integers(0, 2**31), frac=st.floats(0.05, 1.0))
@SETTINGS
def test_label_flip_modes(seed: int, frac: float) -> None:
    x, y = images(60, seed)
    kw: dict[str, Any] = {"generator": gen(seed), "num_classes": 10, "input_shape": (1, 8, 8)}
    a = create_attack(
        "label_flip",
        {"mode": "source_to_target", "source_label": 1, "target_label": 7, "poison_fraction": frac},
    )
    xs, ys = a.poison_data(x, y, **kw)
    assert xs is x
    changed = ys != y
    assert bool((y[changed] == 1).all()) and bool((ys[changed] == 7).all())
    assert int(changed.sum()) == round(frac * int((y == 1).sum()))
    _, yo = create_attack("label_flip", {"mode": "all_to_one", "target_label": 4}).poison_data(
        x, y, **kw
    )
    assert bool((yo == 4).all())
    _, yr = create_attack("label_flip", {"mode": "random"}).poison_data(x, y, **kw)
    assert bool((yr != y).all()) and bool(((yr >= 0) & (yr < 10)).all())
    _, yv = create_attack("label_flip", {"mode": "reverse"}).poison_data(x, y, **kw)
    assert torch.equal(yv, 9 - y)  # Fang et al.: l -> C - 1 - l


def test_label_flip_boosts_the_trained_update_only_when_asked() -> None:
    mal, ben = updates(3, 2, 5, 7)
    assert poison("label_flip", mal, ben) is mal
    assert torch.equal(poison("label_flip", mal, ben, boost=5.0), mal * 5.0)


def test_label_outside_the_classes_is_config_error() -> None:
    x, y = images()
    for name, params in [
        ("label_flip", {"target_label": 10}),
        ("backdoor", {"target_label": 12}),
        ("inject", {"target_label": 10}),
    ]:
        with pytest.raises(ConfigError):
            create_attack(name, params).poison_data(
                x, y, generator=gen(), num_classes=10, input_shape=(1, 8, 8)
            )


def test_feature_noise_perturbs_inputs_only() -> None:
    x, y = images(50)
    xn, yn = create_attack("feature_noise", {"std": 2.0, "poison_fraction": 0.4}).poison_data(
        x, y, generator=gen(), num_classes=10, input_shape=(1, 8, 8)
    )
    assert torch.equal(yn, y)
    changed = (xn != x).flatten(1).any(dim=1)
    assert int(changed.sum()) == 20
    rel = float((xn - x)[changed].std() / x.std())
    assert 1.5 < rel < 2.5


def test_inject_appends_mislabelled_copies() -> None:
    x, y = images(30)
    xi, yi = create_attack("inject", {"ratio": 0.5}).poison_data(
        x, y, generator=gen(), num_classes=10, input_shape=(1, 8, 8)
    )
    assert xi.shape[0] == 45 and torch.equal(xi[:30], x) and torch.equal(yi[:30], y)
    for k in range(30, 45):  # every injected input is a copy of an own input, mislabelled
        src = [i for i in range(30) if torch.equal(x[i], xi[k])]
        assert src and all(y[i] != yi[k] for i in src)


@pytest.mark.parametrize(
    "shape,region",
    [
        ((1, 8, 8), (slice(None), slice(0, 1), slice(5, 8), slice(5, 8))),
        ((28, 28), (slice(None), slice(25, 28), slice(25, 28))),
    ],
)
def test_trigger_stamps_the_bottom_right_square(shape: tuple[int, ...], region: Any) -> None:
    x = torch.zeros(4, *shape)
    out = apply_trigger(x, shape, size=3, value=1.0)
    assert bool((out[region] == 1.0).all()) and float(out.sum()) == 4 * 9
    assert float(x.sum()) == 0.0


def test_trigger_on_flat_inputs() -> None:
    flat = apply_trigger(torch.zeros(2, 64), (64,), size=2, value=5.0).reshape(2, 8, 8)
    assert bool((flat[:, 6:, 6:] == 5.0).all()) and float(flat.sum()) == 2 * 4 * 5.0
    strip = apply_trigger(torch.zeros(2, 10), (10,), size=3, value=1.0)
    assert torch.equal(strip[0], torch.tensor([0.0] * 7 + [1.0] * 3))


def test_backdoor_poisons_a_fraction_and_builds_the_triggered_test_set() -> None:
    x, y = images(40)
    attack = create_attack("backdoor", {"target_label": 2, "poison_fraction": 0.25})
    assert isinstance(attack, Backdoor)
    xp, yp = attack.poison_data(x, y, generator=gen(), num_classes=10, input_shape=(1, 8, 8))
    stamped = (xp[:, 0, 5:, 5:] == float(x.max())).flatten(1).all(dim=1)
    assert int(stamped.sum()) == 10 and bool((yp[stamped] == 2).all())
    assert torch.equal(xp[~stamped], x[~stamped]) and torch.equal(yp[~stamped], y[~stamped])
    xt, yt = attack.triggered_test_set(x, y, (1, 8, 8))
    assert bool((yt != 2).all()) and xt.shape[0] == int((y != 2).sum())
    assert bool((xt[:, 0, 5:, 5:] == float(x.max())).all())


@pytest.mark.parametrize("name", DATA_ATTACKS)
def test_data_attacks_are_reproducible_and_pure(name: str) -> None:
    x, y = images(30)
    x0, y0 = x.clone(), y.clone()
    attack = create_attack(name)
    kw: dict[str, Any] = {"num_classes": 10, "input_shape": (1, 8, 8)}
    a = attack.poison_data(x, y, generator=gen(5), **kw)
    b = attack.poison_data(x, y, generator=gen(5), **kw)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert torch.equal(x, x0) and torch.equal(y, y0)


# ------------------------------------------------------------------ metrics


def test_attack_success_rate() -> None:
    labels = torch.tensor([0, 1, 1, 2, 3, 3])
    preds = torch.tensor([3, 3, 1, 3, 3, 0])
    # backdoor, target 3: eligible are the non-target inputs 0, 1, 2, 3 -> 3 of 4 hit
    assert attack_success_rate(preds, labels, target_label=3) == 0.75
    # targeted flip 1 -> 3: inputs of class 1 -> 1 of 2 classified as 3
    assert attack_success_rate(preds, labels, target_label=3, source_label=1) == 0.5
    assert attack_success_rate(preds, labels, target_label=3, source_label=9) == 0.0
    with pytest.raises(ValueError):
        attack_success_rate(preds[:2], labels, target_label=3)


def test_detection_scores() -> None:
    parts = set(range(10))
    assert detection_scores({1, 2, 3}, {1, 2}, parts) == pytest.approx((2 / 3, 1.0, 0.8))
    assert detection_scores(set(), set(), parts) == (1.0, 1.0, 1.0)
    assert detection_scores(set(), {1}, parts) == (1.0, 0.0, 0.0)
    assert detection_scores({1}, set(), parts) == (0.0, 1.0, 0.0)
    # clients outside this round's participants do not count
    assert detection_counts({1, 20}, {1, 21}, parts) == (1, 0, 0)


@given(
    flagged=st.sets(st.integers(0, 30)),
    malicious=st.sets(st.integers(0, 30)),
    participants=st.sets(st.integers(0, 30)),
)
@SETTINGS
def test_detection_scores_properties(
    flagged: set[int], malicious: set[int], participants: set[int]
) -> None:
    p, r, f1 = detection_scores(flagged, malicious, participants)
    assert 0 <= p <= 1 and 0 <= r <= 1 and 0 <= f1 <= 1
    assert min(p, r) - 1e-12 <= f1 <= max(p, r) + 1e-12
    assert detection_scores(malicious, malicious, participants) == (1.0, 1.0, 1.0)
    tp, fp, fn = detection_counts(flagged, malicious, participants)
    assert precision_recall_f1(tp, fp, fn) == (p, r, f1)
