"""Attacks on the task market (docs/threat-model.md, "Task market"): each test plays the
attacker against the deployed contract on the embedded chain and checks what stops it."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from market_fixtures import STAKE, Market, make_market, make_terms

from fedledger.errors import LedgerError
from fedledger.ledger.contract import pack_records
from fedledger.ledger.market import Entry, Phase, merkle_proof

ROOT = Path(__file__).resolve().parents[2]


def _batch_bytes(m: Market, round: int, batch: int) -> bytes:
    """A batch's bytes as the aggregator posted them (anyone can read them from its event)."""
    index_of = {c.address: i for i, c in enumerate(m.workers)}
    return pack_records([r for r in m.fed.posted[round] if r.batch == batch], index_of)


def _challenge(
    m: Market, worker: int, entries: list[Entry], *, round: int = 0, packed: bytes | None = None
) -> None:
    """An outsider proves (or tries to prove) worker's entry wrong from its posted commitment."""
    rec = m.fed.posted[round][worker]
    m.market.challenge_work(
        m.fed.outsider,
        m.task,
        round=round,
        worker=worker,
        entry=entries[worker],
        proof=m.proof(round, worker),
        batch=rec.batch,
        position=rec.position,
        packed_batch=_batch_bytes(m, round, rec.batch) if packed is None else packed,
    )


def test_the_requester_cannot_take_the_escrow_back_while_the_task_runs() -> None:
    m = make_market()
    held = m.token.balance_of(m.market.address)
    with pytest.raises(LedgerError, match="MarketWrongPhase"):
        m.market.reclaim(m.requester, m.task)
    with pytest.raises(LedgerError, match="MarketNothingOwed"):
        m.market.withdraw(m.requester, m.task)
    with pytest.raises(LedgerError, match="MarketWrongPhase"):  # cancelling needs an unbound task
        m.market.cancel(m.requester, m.task)
    assert m.token.balance_of(m.market.address) == held


def test_late_double_and_party_joins_are_refused() -> None:
    m = make_market(bind=False, max_workers=6)
    extra = m.fed.outsider
    m.token.transfer(m.requester, extra.address, 10 * STAKE)
    m.token.approve(extra, m.market.address, 10 * STAKE)
    with pytest.raises(LedgerError, match="MarketAlreadyJoined"):
        m.market.join(m.workers[0], m.task, rate=0)
    with pytest.raises(LedgerError, match="MarketPartyCannotJoin"):
        m.market.join(m.aggregator, m.task, rate=0)
    with pytest.raises(LedgerError, match="MarketRateTooHigh"):
        m.market.join(extra, m.task, rate=m.terms.cost_rate_cap + 1)
    m.fed.chain.mine_to(m.terms.join_deadline + 1)
    with pytest.raises(LedgerError, match=r"MarketJoinClosed\(task=0, deadline="):
        m.market.join(extra, m.task, rate=0)


def test_a_free_rider_gets_no_share_cannot_claim_others_entries_and_loses_its_stake() -> None:
    m = make_market(rounds=1)
    rider = 3  # commits an update (so it is on the ledger) but the robust rule flags it
    m.ledger_round([0, 1, 2, rider], flagged=[rider])
    entries = [Entry(4, 10), Entry(3, 10), Entry(3, 10), Entry(0, 0)]
    m.post(0, entries)
    m.finish_window()
    leaves = m.market.tree(m.task, 0, entries)
    with pytest.raises(LedgerError, match="MarketBadProof"):  # worker 0's entry as its own
        m.market.claim(m.workers[rider], m.task, [(0, entries[0], merkle_proof(leaves, 0))])
    m.claim(rider, [0])
    assert m.market.owed(m.task, m.workers[rider].address) == 0
    m.market.close(m.fed.outsider, m.task)
    m.market.claim_stake(m.workers[rider], m.task)
    assert m.market.is_slashed(m.task, rider)
    assert m.market.owed(m.task, m.workers[rider].address) == 0


def test_inflated_work_for_a_friend_is_proven_from_the_ledgers_batch() -> None:
    m = make_market(rounds=2, challenge_window=10)
    m.ledger_round([0, 1, 2, 3], samples=5)
    friend = 2
    honest = 5 * m.terms.epochs
    # worker 3's update was not used: no reimbursement, which is no fraud
    entries = [Entry(1, honest), Entry(1, honest), Entry(1, 50 * honest), Entry(0, 0)]
    m.post(0, entries)
    outsider = m.fed.outsider
    with pytest.raises(LedgerError, match="MarketNotFraud"):  # an honest entry
        _challenge(m, 0, entries)
    with pytest.raises(LedgerError, match="MarketNotFraud"):
        _challenge(m, 3, entries)
    with pytest.raises(LedgerError, match="MarketBadBatch"):  # bytes the ledger never posted
        _challenge(m, friend, entries, packed=_batch_bytes(m, 0, 0) + b"x")
    _challenge(m, friend, entries)
    assert m.market.task_info(m.task)["phase"] == Phase.FAULTED
    assert m.market.scored_round(m.task, 0)["voided"]
    m.finish_window()
    with pytest.raises(LedgerError, match="MarketRoundNotPayable"):  # the voided round pays nobody
        m.claim(friend, [0])
    m.market.settle_bond(outsider, m.task)  # the prover gets the aggregator's bond
    assert m.market.owed(m.task, outsider.address) == m.terms.aggregator_bond
    m.market.claim_stake(m.workers[friend], m.task)  # stakes come back: the fraud was not theirs
    assert m.market.owed(m.task, m.workers[friend].address) == STAKE


def test_a_challenge_after_the_window_is_refused_and_the_round_pays() -> None:
    m = make_market(rounds=1)
    m.ledger_round([0, 1, 2, 3], samples=5)
    entries = [Entry(1, 999)] + [Entry(1, 10)] * 3
    m.post(0, entries)
    m.finish_window()
    with pytest.raises(LedgerError, match="MarketChallengeClosed"):
        _challenge(m, 0, entries)


def test_double_withdraw_double_claim_and_double_stake_are_refused() -> None:
    m = make_market(rounds=1)
    m.ledger_round([0, 1, 2, 3])
    m.post(0, [Entry(1, 10)] * 4)
    m.finish_window()
    with pytest.raises(LedgerError, match="MarketAllRoundsPosted"):  # close it instead
        m.market.stall(m.fed.outsider, m.task)
    m.claim(0, [0])
    with pytest.raises(LedgerError, match="MarketAlreadyClaimed"):
        m.claim(0, [0])
    with pytest.raises(LedgerError, match="MarketAlreadyClaimed"):  # twice in one call
        m.market.claim(m.workers[1], m.task, [(0, Entry(1, 10), m.proof(0, 1))] * 2)
    m.market.withdraw(m.workers[0], m.task)
    with pytest.raises(LedgerError, match="MarketNothingOwed"):
        m.market.withdraw(m.workers[0], m.task)
    m.market.close(m.fed.outsider, m.task)
    m.market.claim_stake(m.workers[0], m.task)
    with pytest.raises(LedgerError, match="MarketDone"):
        m.market.claim_stake(m.workers[0], m.task)


def test_when_the_aggregator_stalls_workers_and_the_requester_recover_their_funds() -> None:
    m = make_market(rounds=3)
    m.ledger_round([0, 1, 2, 3])
    m.post(0, [Entry(1, 10)] * 4)
    with pytest.raises(LedgerError, match="MarketTooEarly"):
        m.market.stall(m.fed.outsider, m.task)
    m.mine(m.terms.round_period * 2)  # round 1 is never posted
    m.market.stall(m.fed.outsider, m.task)
    with pytest.raises(LedgerError, match="MarketWrongPhase"):
        m.market.post_round(m.aggregator, m.task, 1, [Entry()] * 4)
    for i, w in enumerate(m.workers):
        m.claim(i, [0])
        m.market.claim_stake(w, m.task)
    m.market.settle_bond(m.fed.outsider, m.task)  # the stalling aggregator's bond: to the requester
    m.market.reclaim(m.requester, m.task)
    t = m.terms
    granted = t.pools().reward + 4 * 10 * 10**15
    assert m.market.owed(m.task, m.requester.address) == t.escrow - granted + t.aggregator_bond
    for i, w in enumerate(m.workers):
        assert m.market.owed(m.task, w.address) == STAKE + m.market.pay_for(
            m.task, 0, i, Entry(1, 10)
        )


def test_an_unbound_task_is_cancelled_and_everyone_gets_their_deposit() -> None:
    m = make_market(bind=False)
    m.fed.chain.mine_to(m.terms.join_deadline + m.terms.bind_period + 1)
    with pytest.raises(LedgerError, match="MarketTooLate"):
        m.market.bind(m.requester, m.task, m.fed.contract.address)
    m.market.cancel(m.fed.outsider, m.task)
    for w in m.workers:
        m.market.claim_stake(w, m.task)
        assert m.market.owed(m.task, w.address) == STAKE
    m.market.settle_bond(m.fed.outsider, m.task)
    m.market.reclaim(m.requester, m.task)
    assert m.market.owed(m.task, m.aggregator.address) == m.terms.aggregator_bond
    assert m.market.owed(m.task, m.requester.address) == m.terms.escrow


def test_a_sybil_split_earns_the_same_score_share_as_one_worker_with_the_same_data() -> None:
    """One party with two identities (two stakes at risk) whose scores add up to one worker's
    gets what that worker gets from the score pool and the cost budget: proportional shares do
    not reward splitting. (The bonus is per identity: a split earns two bonus parts when both
    identities are flagged for it, docs/threat-model.md.)"""
    m = make_market(rounds=1)
    m.ledger_round([0, 1, 2, 3])
    entries = [Entry(4, 20), Entry(2, 10), Entry(2, 10), Entry(0, 0)]  # 1 and 2: one party
    m.post(0, entries)
    pay = [m.market.pay_for(m.task, 0, i, e) for i, e in enumerate(entries)]
    assert pay[1] + pay[2] == pay[0]


def _hostile_token(m: Market, tmp: Path) -> object:
    if shutil.which("node") is None:
        pytest.fail("node is needed to compile the hostile token (make setup installs it)")
    subprocess.run(
        ["node", str(ROOT / "scripts/compile.js"), str(tmp), str(ROOT / "tests/contracts")],
        check=True,
        capture_output=True,
        cwd=ROOT,
    )
    art = json.loads((tmp / "ReentrantToken.json").read_text())
    w3 = m.fed.chain.w3
    receipt = m.fed.chain.send(
        m.requester, {"data": art["bytecode"], "value": 0}, gas=3_000_000, label="deployHostile"
    )
    return w3.eth.contract(address=receipt["contractAddress"], abi=art["abi"])


def test_a_hostile_token_cannot_reenter_withdraw(tmp_path: Path) -> None:
    m = make_market(bind=False)
    token = _hostile_token(m, tmp_path)
    t = make_terms(m.fed, m.token, join_deadline=m.fed.chain.block_number + 5)
    terms = (token.address, *t.as_tuple()[1:])  # type: ignore[attr-defined]
    task = m.market.task_count()
    chain = m.fed.chain

    def call(fn, label: str) -> None:  # noqa: ANN001
        chain.send(
            m.requester,
            {"to": token.address, "data": fn._encode_transaction_data(), "value": 0},
            gas=2_000_000,
            label=label,
        )  # type: ignore[attr-defined]

    call(token.functions.post(m.market.address, terms), "hostilePost")  # type: ignore[attr-defined]
    chain.mine_to(t.join_deadline + t.bind_period + 1)
    m.market.cancel(m.fed.outsider, task)
    held = token.functions.balanceOf(m.market.address).call()  # type: ignore[attr-defined]
    assert held == t.escrow
    call(token.functions.reclaimAndWithdraw(), "hostileWithdraw")  # type: ignore[attr-defined]
    assert token.functions.refused().call() and token.functions.reentered().call() == 0  # type: ignore[attr-defined]
    assert token.functions.balanceOf(m.market.address).call() == 0  # type: ignore[attr-defined]
    assert m.market.owed(task, token.address) == 0  # type: ignore[attr-defined]


def test_flags_from_rounds_after_the_task_never_slash() -> None:
    """The aggregator runs the ledger past the task (round 1 aborted, round 2 flags worker 2)
    and closes: flags the task cannot attribute to its own rounds slash nobody."""
    m = make_market(rounds=1)
    m.ledger_round([0, 1, 2, 3])
    m.post(0, [Entry(1, 10)] * 4)
    f = m.fed
    f.open([0, 1, 2, 3])  # round 1: opened, never finalized
    m.mine(20 + 1)  # past ledger_fixtures.TIMEOUT
    f.contract.abort_round(f.outsider, round=1)
    f.round = 2
    m.ledger_round([2], flagged=[2])
    m.market.close(f.outsider, m.task)
    assert not any(m.market.is_slashed(m.task, i) for i in range(4))


def test_a_voided_rounds_grant_goes_back_to_the_requester() -> None:
    m = make_market(rounds=2, challenge_window=10)
    m.ledger_round([0, 1, 2, 3], samples=5)
    entries = [Entry(1, 10), Entry(1, 10), Entry(1, 11), Entry(1, 10)]  # worker 2: 11 > 5 x 2
    m.post(0, entries)
    _challenge(m, 2, entries)
    for w in m.workers:
        m.market.claim_stake(w, m.task)
        m.market.withdraw(w, m.task)
    m.market.settle_bond(m.fed.outsider, m.task)
    m.market.withdraw(m.fed.outsider, m.task)
    m.market.reclaim(m.requester, m.task)
    assert m.market.owed(m.task, m.requester.address) == m.terms.escrow
    m.market.withdraw(m.requester, m.task)
    assert m.token.balance_of(m.market.address) == 0  # nothing is left locked


def test_a_stalled_tasks_bond_waits_for_the_last_challenge_window() -> None:
    """A round posted just before the stall can still be proven fraudulent: the bond must then
    go to the prover, not to the requester who settled first."""
    m = make_market(rounds=3, round_period=10, challenge_window=30)
    m.ledger_round([0, 1, 2, 3], samples=5)
    entries = [Entry(1, 10), Entry(1, 99), Entry(1, 10), Entry(1, 10)]
    m.post(0, entries)
    m.mine(2 * m.terms.round_period)
    m.market.stall(m.fed.outsider, m.task)
    with pytest.raises(LedgerError, match="MarketTooEarly"):
        m.market.settle_bond(m.requester, m.task)
    with pytest.raises(LedgerError, match="MarketTooEarly"):
        m.market.reclaim(m.requester, m.task)
    _challenge(m, 1, entries)
    m.market.settle_bond(m.requester, m.task)
    assert m.market.owed(m.task, m.fed.outsider.address) == m.terms.aggregator_bond
    with pytest.raises(LedgerError, match="MarketWrongPhase"):  # it has ended
        m.market.stall(m.fed.outsider, m.task)
