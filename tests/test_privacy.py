"""User-level DP-FedAvg (fedledger.privacy): the accountant against published values, the
calibration, the clipping bound, the seeded noise, the engine's pre-round budget check, and the
audit that re-makes the noised aggregate."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import tiny_config
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("dp_accounting")

from fedledger.audit import audit_run  # noqa: E402
from fedledger.engine import run_experiment  # noqa: E402
from fedledger.errors import ConfigError  # noqa: E402
from fedledger.privacy.accountant import (  # noqa: E402
    Sampling,
    calibrate,
    epsilon,
    epsilons,
    is_approximation,
)
from fedledger.privacy.clipping import clip_updates  # noqa: E402
from fedledger.privacy.mechanism import gaussian_noise, noised_mean  # noqa: E402
from fedledger.privacy.plan import PrivacyPlan  # noqa: E402

POISSON = Sampling(population=1000, size=100, kind="poisson")  # q = 0.1


def test_poisson_sampled_gaussian_matches_the_published_values() -> None:
    """z = 1, q = 0.1, 100 rounds, δ = 1e-5 with Poisson sampling: ε ≈ 7.9 (RDP) and ≈ 7.0
    (PLD), the values issue 12 cites; without amplification (q = 1) RDP gives ε ≈ 96."""
    rdp = epsilon(1.0, sampling=POISSON, rounds=100, delta=1e-5, accountant="rdp")
    pld = epsilon(1.0, sampling=POISSON, rounds=100, delta=1e-5, accountant="pld")
    assert rdp == pytest.approx(7.9039, abs=1e-3)
    assert pld == pytest.approx(7.0466, abs=1e-3)
    assert epsilon(1.0, sampling=POISSON, rounds=100, delta=1e-5, accountant="best") == pld
    full = Sampling(population=100, size=100, kind="poisson")
    assert epsilon(1.0, sampling=full, rounds=100, delta=1e-5) == pytest.approx(96.116, abs=1e-2)


def test_fixed_size_sampling_uses_the_replace_one_sensitivity() -> None:
    """With m = N (no sampling) under replace-one, both accountants see a Gaussian of
    sensitivity 2C: the same ε as add/remove at noise z/2."""
    full = Sampling(population=10, size=10)
    half = Sampling(population=10, size=10, kind="poisson")
    for acc in ("rdp", "pld"):
        a = epsilon(1.0, sampling=full, rounds=10, delta=1e-5, accountant=acc)  # type: ignore[arg-type]
        b = epsilon(0.5, sampling=half, rounds=10, delta=1e-5, accountant=acc)  # type: ignore[arg-type]
        assert a == pytest.approx(b, rel=1e-6)
    assert not is_approximation(full, "pld")
    assert is_approximation(Sampling(population=10, size=3), "pld")
    assert not is_approximation(Sampling(population=10, size=3), "rdp")


@pytest.mark.parametrize("acc", ["rdp", "pld", "best"])
def test_per_round_epsilons_are_the_accountants_own(acc: Any) -> None:
    """epsilons() (one pass for the metrics column) gives what the accountant gives for each
    round count, and grows with the rounds."""
    s = Sampling(population=20, size=5)
    eps = epsilons(1.2, sampling=s, rounds=6, delta=1e-4, accountant=acc)
    assert all(b > a for a, b in zip(eps, eps[1:], strict=False))
    for k in (1, 6):
        assert eps[k - 1] == pytest.approx(
            epsilon(1.2, sampling=s, rounds=k, delta=1e-4, accountant=acc), rel=1e-9
        )


@pytest.mark.parametrize("acc", ["rdp", "pld", "best"])
def test_calibrate_round_trips(acc: Any) -> None:
    """The calibrated z gives ε at most the target, and within 1e-3 of it."""
    s = Sampling(population=50, size=10)
    z = calibrate(4.0, delta=1e-5, rounds=20, sampling=s, accountant=acc)
    eps = epsilon(z, sampling=s, rounds=20, delta=1e-5, accountant=acc)
    assert 4.0 - 1e-3 <= eps <= 4.0


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(
        st.lists(st.floats(-1e6, 1e6, allow_nan=False, width=32), min_size=3, max_size=3),
        min_size=1,
        max_size=6,
    ),
    clip=st.floats(1e-3, 1e3),
)
def test_each_clipped_update_is_within_the_bound(rows: list[list[float]], clip: float) -> None:
    """Any updates: every clipped row's float32 norm is at most C, rows within C are kept
    as they are, and the input is left unmodified."""
    u = torch.tensor(rows, dtype=torch.float32)
    before = u.clone()
    c = clip_updates(u, clip_norm=clip)
    norms = torch.linalg.vector_norm(c.to(torch.float64), dim=1)
    assert bool((norms <= clip).all())
    inside = torch.linalg.vector_norm(u.to(torch.float64), dim=1) <= clip
    assert torch.equal(c[inside], u[inside])
    assert torch.equal(u, before)


def test_the_noise_is_recomputable_from_seed_and_round() -> None:
    """The noised mean is (Σ clip + N(0, (zC)²)) / m with the noise of (seed, round): the same
    twice, different for another round or seed."""
    ups = [torch.full((5,), 3.0), torch.zeros(5)]
    kw: dict[str, Any] = dict(dim=5, clip_norm=1.0, noise_multiplier=2.0, denominator=4)
    a = noised_mean(ups, seed=1, round=3, **kw)
    assert torch.equal(a, noised_mean(ups, seed=1, round=3, **kw))
    assert not torch.equal(a, noised_mean(ups, seed=1, round=4, **kw))
    assert not torch.equal(a, noised_mean(ups, seed=2, round=3, **kw))
    clipped = torch.full((5,), 3.0, dtype=torch.float64) / (3.0 * 5**0.5)
    want = (clipped + gaussian_noise(5, std=2.0, seed=1, round=3)) / 4
    assert torch.allclose(a.to(torch.float64), want, atol=1e-6)


def _dp_config(**privacy: Any) -> Any:
    return tiny_config(
        federation={"num_clients": 8, "clients_per_round": 4, "rounds": 3},
        privacy={"clip_norm": 1.0, "noise_multiplier": 1.0, "delta": 1e-3, **privacy},
    )


def test_a_dp_run_records_epsilon_and_audits_clean(tmp_path: Path) -> None:
    """metrics.csv's epsilon and summary.json's privacy table are the accountant's; the audit
    re-makes every noised aggregate and passes."""
    cfg = _dp_config(accountant="best")
    plan = PrivacyPlan.from_config(cfg)
    summary = run_experiment(cfg, out=tmp_path / "dp", progress=False)
    p = summary["privacy"]
    assert p["epsilon"] == plan.epsilons[-1] and p["delta"] == 1e-3
    assert p["noise_multiplier"] == 1.0 and p["accountant"] == "best" and p["stopped"] is None
    rows = list(csv.DictReader((tmp_path / "dp" / "metrics.csv").open()))
    assert [float(r["epsilon"]) for r in rows] == pytest.approx(list(plan.epsilons))
    report = audit_run(tmp_path / "dp")
    assert report.ok, report.describe()


def test_the_audit_fails_a_run_that_skipped_the_noise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An aggregator that clips but adds no noise: the audit's recomputed global model differs
    in every round, and it says so."""
    real = PrivacyPlan.aggregate

    def no_noise(self: PrivacyPlan, updates: Any, *, rnd: int, dim: int) -> torch.Tensor:
        quiet = PrivacyPlan(**{**self.__dict__, "noise_multiplier": 1e-12})
        return real(quiet, updates, rnd=rnd, dim=dim)

    with monkeypatch.context() as m:
        m.setattr(PrivacyPlan, "aggregate", no_noise)
        run_experiment(_dp_config(), out=tmp_path / "quiet", progress=False)
    report = audit_run(tmp_path / "quiet")
    assert not report.ok
    bad = [f for f in report.findings if f.check == "aggregation"]
    assert len(bad) == 3 and "seeded noise" in bad[0].message


def test_the_audit_fails_an_edited_epsilon(tmp_path: Path) -> None:
    """A summary that claims a smaller ε than the accountant gives is an error."""
    out = tmp_path / "dp"
    run_experiment(_dp_config(), out=out, progress=False)
    s = json.loads((out / "summary.json").read_text())
    s["privacy"]["epsilon"] = 1.0
    (out / "summary.json").write_text(json.dumps(s))
    report = audit_run(out)
    assert any(f.check == "privacy" and "privacy.epsilon" in f.message for f in report.findings)


def test_the_pre_round_check_stops_before_the_budget_is_exceeded(tmp_path: Path) -> None:
    """With max_epsilon between ε after round 2 and after round 3, rounds 0 and 1 run, round
    2 does not; the summary says why and the audit passes."""
    eps = PrivacyPlan.from_config(_dp_config()).epsilons
    cfg = _dp_config(max_epsilon=(eps[1] + eps[2]) / 2)
    summary = run_experiment(cfg, out=tmp_path / "budget", progress=False)
    assert summary["rounds"] == 2 and summary["privacy"]["rounds"] == 2
    assert summary["privacy"]["epsilon"] == eps[1] <= cfg.privacy.max_epsilon
    assert "round 2 would bring epsilon" in summary["privacy"]["stopped"]
    rows = list(csv.DictReader((tmp_path / "budget" / "metrics.csv").open()))
    assert [int(r["round"]) for r in rows] == [0, 1]
    report = audit_run(tmp_path / "budget")
    assert report.ok, report.describe()


def test_a_target_epsilon_is_calibrated_and_met() -> None:
    cfg = _dp_config(noise_multiplier=None, target_epsilon=8.0)
    plan = PrivacyPlan.from_config(cfg)
    assert plan.calibrated and 8.0 - 1e-3 <= plan.epsilons[-1] <= 8.0


BAD = [
    ({"clip_norm": 0.0}, "privacy.clip_norm"),
    ({"clip_norm": -1.0}, "privacy.clip_norm"),
    ({"delta": 0.2}, r"privacy.delta \(0.2\) must be below 1 / num_clients"),
    ({"delta": 0.0}, "privacy.delta"),
    ({"noise_multiplier": None}, "exactly one of noise_multiplier"),
    ({"target_epsilon": 4.0}, "exactly one of noise_multiplier"),
    ({"noise_multiplier": None, "target_epsilon": 0.0}, "privacy.target_epsilon"),
    ({"max_epsilon": 0.0}, "privacy.max_epsilon"),
    ({"max_epsilon": -2.0}, "privacy.max_epsilon"),
    ({"accountant": "prv"}, "privacy.accountant"),
    ({"sigma": 1.0}, "unknown key 'privacy.sigma'"),
]


@pytest.mark.parametrize(("values", "match"), BAD)
def test_bad_privacy_values_are_clear_config_errors(values: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        _dp_config(**values)


@pytest.mark.parametrize(
    ("sections", "match"),
    [
        ({"aggregation": {"name": "median"}}, "aggregation rule 'median'"),
        ({"committee": {"size": 2}}, r"\[committee\]"),
        ({"reputation": {"max_flags": 2}}, "reputation.max_flags"),
        ({"attack": {"name": "gaussian", "clients": [0]}}, r"\[attack\]"),
    ],
)
def test_dp_with_what_breaks_its_assumptions_is_refused(
    sections: dict[str, Any], match: str
) -> None:
    with pytest.raises(ConfigError, match=match):
        tiny_config(
            federation={"num_clients": 8, "clients_per_round": 4},
            privacy={"clip_norm": 1.0, "noise_multiplier": 1.0, "delta": 1e-3},
            **sections,
        )


class _Stop(Exception):
    pass


def test_a_resumed_dp_run_ends_with_the_uninterrupted_model(tmp_path: Path) -> None:
    """The checkpoint needs nothing for DP: the noise derives from (seed, round), ε from the
    config. A run stopped after round 1's row resumes to the uninterrupted hash and ε."""
    cfg = _dp_config()
    whole = run_experiment(cfg, out=tmp_path / "whole", progress=False)

    def stop(row: dict[str, Any]) -> None:
        if row["round"] == 1:
            raise _Stop

    with pytest.raises(_Stop):
        run_experiment(cfg, out=tmp_path / "cut", progress=False, on_round=stop)
    resumed = run_experiment(cfg, out=tmp_path / "cut", progress=False, resume=True)
    assert resumed["global_model_hash"] == whole["global_model_hash"]
    assert resumed["privacy"] == whole["privacy"]
    report = audit_run(tmp_path / "cut")
    assert report.ok, report.describe()


def test_a_budget_below_one_round_is_refused_before_the_run(tmp_path: Path) -> None:
    """No round could run: a ConfigError, and nothing is written."""
    with pytest.raises(ConfigError, match="below the epsilon of a single round"):
        run_experiment(_dp_config(max_epsilon=0.01), out=tmp_path / "none", progress=False)
    assert not (tmp_path / "none").exists()


def test_without_privacy_nothing_changes(tmp_path: Path) -> None:
    """No [privacy]: no epsilon column, no privacy table."""
    cfg = tiny_config(federation={"rounds": 1})
    summary = run_experiment(cfg, out=tmp_path / "plain", progress=False)
    assert "privacy" not in summary
    header = (tmp_path / "plain" / "metrics.csv").read_text().splitlines()[0]
    assert "epsilon" not in header.split(",")


def test_the_audit_fails_a_run_whose_noise_is_not_the_seeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Noise of the right size from another stream (an aggregator that chose its noise): the
    audit's recomputation differs in every round."""
    import fedledger.privacy.mechanism as mech

    real = mech.noise_seed
    with monkeypatch.context() as m:
        m.setattr(mech, "noise_seed", lambda *, seed, round: real(seed=seed + 1, round=round))
        run_experiment(_dp_config(), out=tmp_path / "other", progress=False)
    report = audit_run(tmp_path / "other")
    assert len([f for f in report.findings if f.check == "aggregation"]) == 3
