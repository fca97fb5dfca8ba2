"""Committee validation: votes signed, recorded and tallied on-chain; malicious minority tolerated."""

from __future__ import annotations

from pathlib import Path

import torch
from helpers import tiny_config

from fedledger.audit import audit_run
from fedledger.engine import Hooks, run_experiment
from fedledger.protocol.committee import accepted, honest_votes, tally
from fedledger.protocol.selection import select_committee


def test_votes_and_majority_rule() -> None:
    assert honest_votes(torch.tensor([1.0, 1.1, 5.0, float("nan")]), tolerance=0.5) == [1, 1, 0, 0]
    assert tally([[1, 0, 1], [1, 1, 0], [0, 0, 1]]) == [2, 1, 2]
    assert accepted([2, 1, 2], committee_size=3) == [True, False, True]
    assert accepted([2], committee_size=4) == [False]  # a tie is not a majority


def test_committee_rotates_and_avoids_trainers() -> None:
    a = select_committee(seed=1, round=0, num_clients=20, size=5, trainers=list(range(10)))
    b = select_committee(seed=1, round=1, num_clients=20, size=5, trainers=list(range(10)))
    assert len(a) == 5 and all(m >= 10 for m in a)
    assert a != b
    assert a == select_committee(seed=1, round=0, num_clients=20, size=5, trainers=list(range(10)))


def _noisy(rnd: int, cid: int, delta: torch.Tensor) -> torch.Tensor:
    """Client 1 sends noise shaped like an update, far larger than a real one."""
    if cid == 1:
        return torch.randn(delta.shape, generator=torch.Generator().manual_seed(rnd)) * 10
    return delta


def test_committee_rejects_a_noise_update_on_chain_and_audits_clean(tmp_path: Path) -> None:
    cfg = tiny_config(
        federation={"num_clients": 8, "clients_per_round": 5, "rounds": 3},
        aggregation={"name": "committee"},
        committee={"size": 3},
    )
    out = tmp_path / "c"
    run_experiment(cfg, out=out, progress=False, hooks=Hooks(update=_noisy))
    rows = (out / "rejected.csv").read_text().splitlines()[1:]
    noisy_rounds = [r for r in rows if r.split(",")[1] == "1"]
    assert noisy_rounds and all("COMMITTEE_REJECTED" in r for r in noisy_rounds)
    report = audit_run(out)
    assert report.ok, report.describe()


def test_malicious_minority_on_the_committee_changes_nothing(tmp_path: Path) -> None:
    """At most two of five members are the attacker's and vote for its (Gaussian-noise) updates
    (two attackers among ten clients, so a minority on any committee whatever the draw)."""
    base = {
        "federation": {"num_clients": 10, "clients_per_round": 5, "rounds": 2},
        "aggregation": {"name": "committee"},
        "committee": {"size": 5},
    }
    attack = {"name": "gaussian", "clients": [0, 1], "params": {}}
    out = tmp_path / "m"
    s = run_experiment(tiny_config(**base, attack=attack), out=out, progress=False)
    assert audit_run(out).ok
    rejected = (out / "rejected.csv").read_text().splitlines()[1:]
    flagged_clients = {int(r.split(",")[1]) for r in rejected}
    assert flagged_clients <= {0, 1}
    assert s["detection_f1"] > 0.9


def test_repeat_offenders_are_excluded_and_the_audit_agrees(tmp_path: Path) -> None:
    cfg = tiny_config(
        federation={"num_clients": 6, "clients_per_round": 6, "rounds": 3},
        reputation={"max_flags": 1},
    )
    out = tmp_path / "r"
    run_experiment(cfg, out=out, progress=False, hooks=Hooks(update=_nan_from_client_1))
    rows = [line.split(",") for line in (out / "metrics.csv").read_text().splitlines()[1:]]
    assert [int(r[8]) for r in rows] == [6, 5, 5]  # num_selected: client 1 is out after round 0
    assert audit_run(out).ok


def _nan_from_client_1(rnd: int, cid: int, delta: torch.Tensor) -> torch.Tensor:
    return torch.full_like(delta, float("nan")) if cid == 1 else delta
