"""A run with a task market (`[task]`, `[incentives]`): the market is set up, scored, closed
and paid out by `fedledger run`, and `fedledger audit` re-derives every entry and payout."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from helpers import tiny_config

from fedledger.audit import audit_run
from fedledger.engine import run_experiment
from fedledger.engine.rounds import Hooks
from fedledger.incentives.entries import EntryTuple

MARKET = {
    "task": {
        "budget": 50.0,
        "cost_budget": 5.0,
        "stake": 1.0,
        "aggregator_bond": 2.0,
        "validator_share": 0.1,
    },
    "incentives": {"scoring": "gtg_shapley", "validation_samples": 60},
    "committee": {"size": 2},
}


@pytest.fixture(scope="module")
def market_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("market") / "run"
    run_experiment(tiny_config(**MARKET), out=out, progress=False)
    return out


def test_a_market_run_pays_out_every_token_it_took_in_and_audits(market_run: Path) -> None:
    summary = json.loads((market_run / "summary.json").read_text())
    m = summary["market"]
    assert m["phase"] == "closed"
    rows = list(csv.DictReader((market_run / "payouts.csv").open()))
    assert [int(r["worker"]) for r in rows] == [0, 1, 2, 3]
    for r in rows:  # what a worker was paid for its rounds is exactly its four parts
        parts = sum(float(r[k]) for k in ("reward", "bonus", "validation", "reimbursement"))
        assert parts == pytest.approx(float(r["rounds_paid"]), rel=1e-9)
        assert len(r["scores"].split(";")) == 3
    # the honest committee members voted the outcome: they share each round's validation pool
    assert sum(float(r["validation"]) for r in rows) == pytest.approx(50.0 * 0.1, rel=1e-9)
    workers = sum(float(r["withdrawn"]) for r in rows)
    deposits = 50.0 + 5.0 + 4 * 1.0 + 2.0
    out = workers + m["requester_back"] + 2.0  # the aggregator gets its bond back
    # in tokens as floats: equal up to float rounding (the audit checks the base units exactly)
    assert out == pytest.approx(deposits, rel=1e-12)
    assert (market_run / "incentives.png").stat().st_size > 0
    report = audit_run(market_run)
    assert report.ok, report.describe()


def test_an_edited_payouts_file_is_named_by_the_audit(market_run: Path, tmp_path: Path) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(market_run, run)
    rows = list(csv.DictReader((run / "payouts.csv").open()))
    rows[2]["withdrawn"] = str(float(rows[2]["withdrawn"]) + 1)
    with (run / "payouts.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    report = audit_run(run)
    assert any("payouts.csv line 4: worker 2 withdrew" in p for p in report.problems), (
        report.describe()
    )


def test_inflated_scores_for_a_friend_are_named_by_the_audit(tmp_path: Path) -> None:
    """The aggregator posts a bigger score for worker 1 in round 1 than its update is worth:
    the contract cannot tell (scores come from off-chain data), the audit re-scores it."""

    def inflate(rnd: int, entries: list[EntryTuple]) -> list[EntryTuple]:
        if rnd != 1:
            return entries
        s, *rest = entries[1]
        return [*entries[:1], (s + 10**6, *rest), *entries[2:]]

    out = tmp_path / "run"
    run_experiment(tiny_config(**MARKET), out=out, progress=False, hooks=Hooks(score=inflate))
    report = audit_run(out)
    assert any(
        "round 1" in p and "worker 1's entry" in p and "re-scoring the round gives" in p
        for p in report.problems
    ), report.describe()


def test_a_validation_reward_for_a_friend_is_named_by_the_audit(tmp_path: Path) -> None:
    """The aggregator flips worker 0's validator flag in round 1 (a committed worker, so the
    contract takes it): whether a vote agreed with the outcome is off-chain data, and the audit
    recomputes it from the recorded votes and outcomes."""

    def friend(rnd: int, entries: list[EntryTuple]) -> list[EntryTuple]:
        if rnd != 1:
            return entries
        s, w, b, v = entries[0]
        return [(s, w, b, not v), *entries[1:]]

    out = tmp_path / "run"
    run_experiment(tiny_config(**MARKET), out=out, progress=False, hooks=Hooks(score=friend))
    report = audit_run(out)
    assert any("round 1" in p and "worker 0's entry" in p for p in report.problems), (
        report.describe()
    )


def test_the_audit_compares_every_credit_and_the_balance_with_the_formulas(
    market_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chain cannot be edited, so the check is tried the other way round: if the
    contract's formula gave one base unit more, or the market held one more, the audit says
    so (a contract paying other than its formula would be named the same way)."""
    from fedledger.ledger.market import RewardToken, TaskMarketContract

    pay_for = TaskMarketContract.pay_for
    monkeypatch.setattr(TaskMarketContract, "pay_for", lambda *a: pay_for(*a) + 1)
    report = audit_run(market_run)
    assert any("for its rounds, the formula gives" in p for p in report.problems)
    monkeypatch.setattr(TaskMarketContract, "pay_for", pay_for)
    balance_of = RewardToken.balance_of
    monkeypatch.setattr(RewardToken, "balance_of", lambda *a: balance_of(*a) + 1)
    report = audit_run(market_run)
    assert any("deposits minus withdrawals" in p for p in report.problems)
