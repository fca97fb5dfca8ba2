"""Who joins a task (`incentives.participation = "rational"`): each worker of the crowd joins
only if the posted terms cover its expected cost; the run is the run of those who joined, and
`fedledger audit` re-derives the decision."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from helpers import tiny_config
from hypothesis import given, settings
from hypothesis import strategies as st

from fedledger.audit import audit_run
from fedledger.engine import run_experiment
from fedledger.errors import ConfigError
from fedledger.incentives.participation import crowd_offers, decide, resolve
from fedledger.incentives.terms import private_costs

# 6 workers of ~66 samples, private costs 0.001-0.02 per unit of work: 3 rounds cost them
# ~0.2-4 tokens against a 2-token share of the budget, so some join and some do not
CROWD = {
    "federation": {"num_clients": 6},
    "task": {"budget": 12.0, "cost_budget": 1.0, "stake": 1.0, "aggregator_bond": 2.0},
    "incentives": {
        "scoring": "leave_one_out",
        "validation_samples": 60,
        "participation": "rational",
        "cost_low": 0.001,
        "cost_high": 0.02,
    },
}


def test_a_worker_joins_exactly_when_the_terms_cover_its_expected_cost() -> None:
    # 2 workers, 10 rounds, 1 epoch, cap 0.1: worst-case claims 0.1 x 20 x 1 x 2 x 10 = 40,
    # of which a cost budget of 10 covers a quarter
    offers = decide(
        sizes=[10, 20],
        costs=[0.2, 0.05],
        rounds=10,
        epochs=1,
        budget=30.0,
        cost_budget=10.0,
        cost_rate_cap=0.1,
    )
    a, b = offers
    # worker 0: work 100, rate capped at 0.1, reimbursed 0.1 x 100 x 0.25 = 2.5; cost 20
    assert (a.expected_work, a.rate) == (100, 0.1)
    assert a.expected_reimbursement == pytest.approx(2.5)
    assert a.expected_reward == 15.0 and a.expected_cost == pytest.approx(20.0)
    assert not a.joined  # 17.5 < 20
    # worker 1: work 200, rate 0.05, reimbursed 2.5; cost 10 <= 17.5
    assert b.expected_reimbursement == pytest.approx(2.5) and b.joined


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 500), min_size=1, max_size=12),
    data=st.data(),
    budget=st.floats(0.01, 1e4),
    more=st.floats(1.0, 10.0),
)
def test_a_bigger_budget_never_turns_a_worker_away(
    sizes: list[int], data: st.DataObject, budget: float, more: float
) -> None:
    costs = data.draw(st.lists(st.floats(0, 1), min_size=len(sizes), max_size=len(sizes)))
    terms = {"rounds": 5, "epochs": 2, "cost_budget": 3.0, "cost_rate_cap": 0.01}
    low = decide(sizes=sizes, costs=costs, budget=budget, **terms)
    high = decide(sizes=sizes, costs=costs, budget=budget * more, **terms)
    assert all(h.joined for lo, h in zip(low, high, strict=True) if lo.joined)
    # a worker whose cost the cap and the cost budget cover in full always joins
    covered = decide(
        sizes=sizes,
        costs=costs,
        budget=budget,
        rounds=5,
        epochs=2,
        cost_budget=1e9,
        cost_rate_cap=1.0,
    )
    assert all(o.joined for o in covered)


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 500), min_size=2, max_size=12),
    cost=st.floats(0, 1),
    budget=st.floats(0.01, 1e4),
)
def test_of_two_equally_costly_workers_the_bigger_never_joins_alone(
    sizes: list[int], cost: float, budget: float
) -> None:
    offers = decide(
        sizes=sizes,
        costs=[cost] * len(sizes),
        rounds=5,
        epochs=2,
        budget=budget,
        cost_budget=3.0,
        cost_rate_cap=0.01,
    )
    for a in offers:
        for b in offers:
            if a.samples > b.samples and a.joined:
                assert b.joined


def test_terms_that_attract_nobody_are_a_configuration_error() -> None:
    cfg = tiny_config(**{**CROWD, "task": {**CROWD["task"], "budget": 0.01, "cost_budget": 0.0}})
    with pytest.raises(ConfigError, match="no worker of the 6 joins at these terms"):
        resolve(cfg)


@pytest.mark.parametrize(
    ("federation", "message"),
    [
        ({"population": 6}, "population and federation.members go together"),
        ({"population": 6, "members": [0, 1]}, "lists 2 workers, but num_clients is 4"),
        ({"population": 6, "members": [0, 2, 1, 3]}, "ascending order"),
        ({"population": 6, "members": [0, 1, 2, 6]}, "each below federation.population"),
    ],
)
def test_a_bad_member_list_is_refused(federation: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        tiny_config(federation=federation)


def test_rational_participation_needs_every_member_in_every_round() -> None:
    with pytest.raises(ConfigError, match="trains in every round"):
        tiny_config(**{**CROWD, "federation": {"num_clients": 6, "clients_per_round": 3}})


def test_with_everyone_joining_the_terms_must_cover_every_cost() -> None:
    inc = {**CROWD["incentives"], "participation": "all"}
    with pytest.raises(ConfigError, match="participation = 'rational' to let workers stay out"):
        tiny_config(**{**CROWD, "incentives": inc})


@pytest.fixture(scope="module")
def crowd_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("crowd") / "run"
    run_experiment(tiny_config(**CROWD), out=out, progress=False)
    return out


def test_the_run_is_the_run_of_the_workers_who_joined(crowd_run: Path) -> None:
    offers = crowd_offers(tiny_config(**CROWD))
    joined = [o.worker for o in offers if o.joined]
    assert 0 < len(joined) < 6, "the crowd's terms should split it; the test needs both"
    recorded = (crowd_run / "config.toml").read_text()
    from fedledger.config import load_config

    cfg = load_config(crowd_run / "config.toml")
    assert "population = 6" in recorded
    assert cfg.federation.members == joined and cfg.federation.num_clients == len(joined)
    rows = list(csv.DictReader((crowd_run / "participation.csv").open()))
    assert [int(r["joined"]) for r in rows] == [int(o.joined) for o in offers]
    payouts = list(csv.DictReader((crowd_run / "payouts.csv").open()))
    assert len(payouts) == len(joined)  # only those who joined staked and were paid
    # each member declared its own private cost, at most the cap
    costs = private_costs(cfg)
    assert [float(p["cost_per_work"]) for p in payouts] == pytest.approx(list(costs))
    summary = json.loads((crowd_run / "summary.json").read_text())
    assert summary["market"]["participation"] == {"crowd": 6, "joined": len(joined)}
    report = audit_run(crowd_run)
    assert report.ok, report.describe()


def test_an_edited_decision_in_participation_csv_is_named_by_the_audit(
    crowd_run: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    shutil.copytree(crowd_run, run)
    rows = list(csv.DictReader((run / "participation.csv").open()))
    k = next(i for i, r in enumerate(rows) if r["joined"] == "0")
    rows[k]["joined"] = "1"
    with (run / "participation.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    report = audit_run(run)
    assert any(f"participation.csv line {k + 2}" in p for p in report.problems), report.describe()


def test_a_requester_who_picks_the_members_is_named_by_the_audit(tmp_path: Path) -> None:
    """A run whose member list is not the crowd's own decision (a requester who admits a
    worker the terms do not attract, e.g. its own Sybil) runs, and the audit names it."""
    offers = crowd_offers(tiny_config(**CROWD))
    stays_out = next(o.worker for o in offers if not o.joined)
    members = sorted({*(o.worker for o in offers if o.joined), stays_out})
    fed = {"num_clients": len(members), "population": 6, "members": members}
    out = tmp_path / "run"
    run_experiment(tiny_config(**{**CROWD, "federation": fed}), out=out, progress=False)
    assert not (out / "participation.csv").exists()  # the decision was not the crowd's
    report = audit_run(out)
    assert any(f"[{stays_out}] would not have joined" in p for p in report.problems), (
        report.describe()
    )


def test_a_sweep_over_budgets_resumes_and_records_a_budget_nobody_takes(tmp_path: Path) -> None:
    """A sweep cell's recorded config.toml holds the crowd's decision; the cell is still
    recognised as done on the next sweep, and a budget that attracts nobody is a failed cell,
    not a failed sweep."""
    import tomli_w

    from fedledger.engine.sweep import parse_grid, run_sweep

    base = tiny_config(**{**CROWD, "federation": {"num_clients": 6, "rounds": 2}})
    raw = base.model_dump(mode="json", exclude_none=True)
    cfg = tmp_path / "base.toml"
    cfg.write_text(tomli_w.dumps(raw))
    grid = parse_grid(["task.budget=0.01,12.0"])
    rows = run_sweep(cfg, grid=grid, out=tmp_path / "sw", progress=False)
    assert rows[0]["status"].startswith("error") and "joins at these terms" in rows[0]["status"]
    assert rows[1]["status"] == "ok"
    again = run_sweep(cfg, grid=grid, out=tmp_path / "sw", progress=False)
    assert again[1]["status"] == "ok (cached)"
