"""The task market on the embedded chain: escrow, joins, round entries, payouts, slashing and
the gas limits the wrapper sets (known answers computed by hand from the terms)."""

from __future__ import annotations

import pytest
from ledger_fixtures import make_fed
from market_fixtures import BOND, STAKE, Market, make_market, make_terms

from fedledger.errors import LedgerError
from fedledger.ledger.market import (
    GAS_CLAIM,
    GAS_POST_ROUND,
    Entry,
    Phase,
    RewardToken,
    TaskMarketContract,
    entry_hash,
    merkle_proof,
    merkle_root,
    pack_entries,
)


def _withdraw_all(m: Market, accounts: list) -> dict[str, int]:  # noqa: ANN001
    got = {}
    for a in accounts:
        before = m.token.balance_of(a.address)
        if m.market.owed(m.task, a.address):
            m.market.withdraw(a, m.task)
        got[a.address] = m.token.balance_of(a.address) - before
    return got


def test_a_closed_task_pays_shares_bonus_costs_and_stakes_and_returns_the_rest() -> None:
    rates = [10**15, 2 * 10**15, 0, 10**15]
    m = make_market(rates=rates)
    t = m.terms
    scores = {0: [6, 3, 0, 1], 1: [1, 1, 0, 2], 2: [0, 5, 0, 5]}
    committed = {0: [0, 1, 3], 1: [0, 1, 3], 2: [1, 3]}
    for rnd in range(t.rounds):
        m.ledger_round(committed[rnd])
        entries = [
            Entry(
                score=scores[rnd][i],
                work=10 * t.epochs if i in committed[rnd] else 0,
                bonus=i == max(committed[rnd], key=lambda j: scores[rnd][j]),
            )
            for i in range(4)
        ]
        m.post(rnd, entries)
    m.finish_window()
    for i in (0, 1, 3):
        m.claim(i, [r for r in range(t.rounds) if i in committed[r]])
    m.market.close(m.fed.outsider, m.task)
    for w in m.workers:
        m.market.claim_stake(w, m.task)
    m.market.settle_bond(m.fed.outsider, m.task)
    m.market.reclaim(m.requester, m.task)
    req_before = m.token.balance_of(m.requester.address)
    got = _withdraw_all(m, [*m.workers, m.aggregator, m.requester])
    # by hand: pool 900 per round, bonus 100 per round, work 20 units at the declared rate
    pool, bonus = t.pools().reward, t.pools().bonus
    assert (pool, bonus) == (900 * 10**18, 100 * 10**18)
    expect = [0, 0, 0, 0]
    for rnd in range(t.rounds):
        total = sum(scores[rnd])
        for i in committed[rnd]:
            expect[i] += pool * scores[rnd][i] // total + 20 * rates[i]
        top = max(committed[rnd], key=lambda j: scores[rnd][j])
        expect[top] += bonus
    for i, w in enumerate(m.workers):
        assert got[w.address] == expect[i] + STAKE
    assert got[m.aggregator.address] == BOND
    # the requester gets everything no round granted: here only the unused cost budget
    granted_cost = sum(20 * rates[i] for rnd in range(t.rounds) for i in committed[rnd])
    assert got[m.requester.address] == t.cost_budget - granted_cost
    assert m.token.balance_of(m.requester.address) - req_before == got[m.requester.address]
    info = m.market.task_info(m.task)
    assert info["phase"] == Phase.CLOSED
    # what stays behind is the rounding of the score shares, and never more than was taken in
    dust = m.token.balance_of(m.market.address)
    assert 0 <= dust < 10 * t.rounds
    assert info["credited"] + dust == info["deposited"]


def test_flagged_workers_lose_their_stake_to_the_unflagged_ones() -> None:
    m = make_market(rounds=1)
    m.ledger_round([0, 1, 2, 3], flagged=[2])
    m.post(0, [Entry(1, 0), Entry(1, 0), Entry(0, 0), Entry(1, 0)])
    m.finish_window()
    m.market.close(m.fed.outsider, m.task)
    assert [m.market.is_slashed(m.task, i) for i in range(4)] == [False, False, True, False]
    for w in m.workers:
        m.market.claim_stake(w, m.task)
    got = _withdraw_all(m, m.workers)
    share = STAKE // 3
    assert [got[w.address] for w in m.workers] == [STAKE + share, STAKE + share, 0, STAKE + share]


def test_entries_for_workers_without_a_commitment_or_with_too_much_work_are_refused() -> None:
    m = make_market(rounds=2)
    m.ledger_round([0, 1])
    with pytest.raises(LedgerError, match=r"MarketNoCommitment\(task=0, round=0, worker=2\)"):
        m.post(0, [Entry(1, 1), Entry(1, 1), Entry(1, 0), Entry()])
    with pytest.raises(LedgerError, match="MarketNoCommitment"):  # a bonus alone pays too
        m.post(0, [Entry(1, 1), Entry(), Entry(), Entry(bonus=True)])
    with pytest.raises(LedgerError, match="MarketWorkTooLarge"):
        m.post(0, [Entry(1, m.terms.max_work_per_round + 1), Entry(), Entry(), Entry()])
    with pytest.raises(LedgerError, match="MarketMalformedEntries"):
        m.post(0, [Entry(1, 1)])
    with pytest.raises(LedgerError, match="MarketRoundOutOfOrder"):
        m.post(1, [Entry(), Entry(), Entry(), Entry()])
    m.post(0, [Entry(1, 1), Entry(1, 1), Entry(), Entry()])
    with pytest.raises(LedgerError, match="MarketRoundNotFinalOnLedger"):
        m.post(1, [Entry(), Entry(), Entry(), Entry()])  # the ledger has no round 1 yet
    with pytest.raises(LedgerError, match="MarketNotAggregator"):
        m.market.post_round(m.requester, m.task, 1, [Entry()] * 4)


def test_agreeing_validators_share_the_validation_pool_and_other_flags_are_refused() -> None:
    m = make_market(rounds=2, validator_bps=500, cost_budget=0)
    pools = m.terms.pools()
    assert pools.validator == m.terms.budget * 500 // 10_000 // 2 > 0
    m.ledger_round([0, 1, 2])
    with pytest.raises(LedgerError, match="MarketNoCommitment"):  # a validator flag pays too
        m.post(0, [Entry(1, 1), Entry(), Entry(), Entry(validator=True)])
    raw = pack_entries([Entry(1, 1), Entry(), Entry(), Entry()])
    bad = raw[:16] + bytes([4]) + raw[17:]  # an unknown flag bit
    with pytest.raises(LedgerError, match=r"MarketBadFlags\(task=0, round=0, worker=0, flags=4\)"):
        m.market._send(
            m.aggregator,
            m.market.contract.functions.postRound(m.task, 0, bad),
            gas=10**6,
            label="postRound",
        )
    entries = [
        Entry(3, 1, True, True),
        Entry(1, 1, False, True),
        Entry(0, 0, False, False),
        Entry(),
    ]
    m.post(0, entries)
    info = m.market.scored_round(m.task, 0)
    assert (info["bonus_count"], info["validator_count"]) == (1, 2)
    m.finish_window()
    for i in (0, 1, 2):
        m.claim(i, [0])
    owed = [m.market.owed(m.task, w.address) for w in m.workers]
    # worker 0: 3/4 of the score pool, the bonus, half the validation pool; worker 1: the rest
    assert owed[0] == pools.reward * 3 // 4 + pools.bonus + pools.validator // 2
    assert owed[1] == pools.reward * 1 // 4 + pools.validator // 2
    assert owed[2] == 0 and owed[3] == 0


def test_merkle_proofs_match_the_contract_and_fix_the_position() -> None:
    m = make_market(num_workers=5, rounds=1)
    m.ledger_round([0, 1, 2, 3, 4])
    entries = [Entry(i + 1, 2 * i, i == 0) for i in range(5)]
    m.post(0, entries)
    leaves = m.market.tree(m.task, 0, entries)
    assert m.market.scored_round(m.task, 0)["root"] == merkle_root(leaves)
    assert leaves[3] == entry_hash(m.market.address, m.task, 0, 3, entries[3])
    m.finish_window()
    # worker 1's entry with worker 0's proof, or worker 0's bigger entry: both refused
    with pytest.raises(LedgerError, match="MarketBadProof"):
        m.market.claim(m.workers[1], m.task, [(0, entries[1], merkle_proof(leaves, 0))])
    with pytest.raises(LedgerError, match="MarketBadProof"):
        m.market.claim(m.workers[1], m.task, [(0, entries[0], merkle_proof(leaves, 1))])
    m.claim(4, [0])  # the odd last leaf moves up: its proof is shorter
    assert len(merkle_proof(leaves, 4)) == 1
    assert m.market.owed(m.task, m.workers[4].address) == m.market.pay_for(m.task, 0, 4, entries[4])


def test_create_task_with_a_permit_instead_of_an_approval() -> None:
    m = make_market(bind=False)
    t = make_terms(m.fed, m.token)
    before = m.token.balance_of(m.requester.address)
    deadline = m.fed.chain.w3.eth.get_block("latest")["timestamp"] + 3600
    task = m.market.create_task_with_permit(m.requester, t, m.token, deadline=deadline)
    assert m.token.balance_of(m.requester.address) == before - t.escrow
    assert m.market.task_info(task)["deposited"] == t.escrow


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"budget": 0}, "budget is 0"),
        ({"stake": 0}, "stake is 0"),
        ({"rounds": 0}, "rounds is 0"),
        ({"bonus_bps": 10_001}, r"bonusBps \+ validatorBps exceeds 10000"),
        ({"bonus_bps": 6_000, "validator_bps": 4_001}, r"bonusBps \+ validatorBps exceeds 10000"),
        ({"budget": 5, "rounds": 10}, "budget too small"),
        ({"join_deadline": 1}, "joinDeadline has passed"),
        ({"cost_rate_cap": 0}, "needs costRateCap"),
    ],
)
def test_bad_terms_are_refused_with_what_is_wrong(change: dict, message: str) -> None:
    m = make_market(bind=False)
    t = make_terms(m.fed, m.token, **change)
    m.token.approve(m.requester, m.market.address, t.escrow)
    with pytest.raises(LedgerError, match=message):
        m.market.create_task(m.requester, t)


def test_binding_checks_the_run_against_the_task() -> None:
    m = make_market(bind=False)
    with pytest.raises(LedgerError, match="MarketTooEarly"):
        m.market.bind(m.requester, m.task, m.fed.contract.address)
    m.fed.chain.mine_to(m.terms.join_deadline + 1)
    with pytest.raises(LedgerError, match="MarketNotRequester"):
        m.market.bind(m.aggregator, m.task, m.fed.contract.address)
    other = make_fed(num_clients=3, chain=m.fed.chain)  # another run on the chain: 3 clients
    with pytest.raises(LedgerError, match=r"MarketLedgerMismatch\(task=0, what=client count\)"):
        m.market.bind(m.requester, m.task, other.contract.address)
    m.ledger_round([0])  # the run has started: its first round cannot be paid by the task
    with pytest.raises(LedgerError, match=r"MarketLedgerMismatch\(task=0, what=run started\)"):
        m.market.bind(m.requester, m.task, m.fed.contract.address)


def test_gas_stays_below_the_wrappers_limits() -> None:
    m = make_market(num_workers=6, rounds=2)
    used = {}
    for rnd in range(2):
        m.ledger_round(list(range(6)))
        receipt = m.market.post_round(
            m.aggregator, m.task, rnd, [Entry(i + 1, 4) for i in range(6)]
        )
        m.entries[rnd] = [Entry(i + 1, 4) for i in range(6)]
        used[f"post{rnd}"] = receipt["gasUsed"]
    m.finish_window()
    claims = [(r, m.entries[r][0], m.proof(r, 0)) for r in range(2)]
    used["claim"] = m.market.claim(m.workers[0], m.task, claims)["gasUsed"]
    assert max(used["post0"], used["post1"]) < GAS_POST_ROUND[0] + 6 * GAS_POST_ROUND[1]
    assert used["claim"] < GAS_CLAIM[0] + 2 * GAS_CLAIM[1]


def test_a_second_market_pays_in_any_erc20_by_address() -> None:
    m = make_market(bind=False)
    other = RewardToken.deploy(m.fed.chain, m.requester, supply=10**24)
    market = TaskMarketContract.deploy(m.fed.chain, m.requester)
    t = make_terms(m.fed, other)
    task = market.create_task(m.requester, t, token=other)
    assert other.balance_of(market.address) == t.escrow
    assert market.task_info(task)["phase"] == Phase.JOINING
