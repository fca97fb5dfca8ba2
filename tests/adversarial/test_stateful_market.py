"""A Hypothesis state machine against the TaskMarket contract on the embedded chain.

One task (``make_market``: four workers joined with distinct cost rates, the aggregator's bond
posted, the FedLedger run bound) is deployed once; the chain goes back to an eth-tester
snapshot of that state before every sequence. Random call sequences by random senders (the
requester, the aggregator, each worker, an outsider) drive both the ledger (finalized rounds in
which a random subset of the workers commits, some flagged; aborted rounds) and the market
(``postRound``, ``claim``, ``challengeWork``, ``stall``, ``close``, ``claimStake``,
``settleBond``, ``reclaim``, ``withdraw``, mining). A small Python model of the contract's rules
says, for every market call, whether it must be accepted and, if not, which custom error the
contract must give (the first requirement the call breaks, in the contract's order), and which
events an accepted call must emit.

After every step the invariants compare the chain with the model: the token balance of the
market is everything deposited less everything withdrawn; the task never credits more than it
took in, and what is owed plus what was withdrawn is what was credited, per account and in
total (so nobody withdraws twice); a worker's round pay is the sum of ``payFor`` over the rounds
it claimed, and ``payFor`` of a worker without a commitment is 0; only workers the ledger
flagged are slashed, only at close, and then all of them (unless the ledger may have finalized a round
beyond the task's, when the contract slashes nobody); phases move only Running -> Closed /
Stalled / Faulted and Stalled -> Faulted.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from typing import Any

import eth_tester  # noqa: F401  py-evm raises the recursion limit on import: not mid-test
import hypothesis.strategies as st
from eth_abi import decode
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from hypothesis import event
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from ledger_fixtures import H0, TIMEOUT
from machine_helpers import MACHINE_SETTINGS, TRAMPOLINE, Views, abi_type, attempt
from market_fixtures import BOND, STAKE, Market, make_market

from fedledger.ledger.chain import TxLog
from fedledger.ledger.contract import PACKED_SIZE, pack_records
from fedledger.ledger.market import Entry, Phase, merkle_proof, merkle_root, pack_entries

N = 4  # workers
ROUNDS = 3
EPOCHS = 2
MAX_WORK = 12  # maxWorkPerRound: a commitment of 3, 4 or 5 samples is 6, 8 or 10 units
PERIOD = 30  # roundPeriod
CW = 10  # challengeWindow
RATES = [10**15, 2 * 10**15, 3 * 10**15, 4 * 10**15]
VALIDATOR_BPS = 500  # a share for agreeing committee members, beside the bonus's 1000
COST_BUDGET = 15 * 10**16  # one round of honest work costs about 10**17: the budget runs out
MAX_LEDGER_ROUNDS = ROUNDS + 2
ALLOWED = {  # Joining -> Running happened in make_market
    (Phase.RUNNING, Phase.CLOSED),
    (Phase.RUNNING, Phase.STALLED),
    (Phase.RUNNING, Phase.FAULTED),
    # challengeWork is open while Stalled; with CW < PERIOD no posted round's window is still
    # open once the next round is overdue, so these terms never take this edge
    (Phase.STALLED, Phase.FAULTED),
}

ACCOUNTS = ("requester", "aggregator", "outsider", "w0", "w1", "w2", "w3")
WORKERS = ("w0", "w1", "w2", "w3")
SENDER_ANY = st.sampled_from(ACCOUNTS)
SENDER_AGG = st.sampled_from(["aggregator"] * 7 + ["requester", "outsider", "w1"])
SENDER_REQ = st.sampled_from(["requester"] * 5 + ["aggregator", "outsider", "w2"])
WORKER_SENDERS = [*WORKERS] * 3 + ["requester", "aggregator", "outsider"]
SENDER_WORKER = st.sampled_from(WORKER_SENDERS)
SAMPLES = st.lists(st.sampled_from([3, 4, 5]), min_size=N, max_size=N)
SUBSET = st.lists(st.sampled_from(range(N)), unique=True, max_size=N)
WHICH_ROUND = st.sampled_from(["next"] * 8 + ["prev", "skip", "beyond"])
WORK_MODE = st.sampled_from(["honest"] * 5 + ["zero", "less", "more"])
IDLE_ENTRY = st.sampled_from(
    [Entry(score=1), Entry(work=10), Entry(bonus=True), Entry(validator=True)]
)
BREAK = st.sampled_from([None] * 6 + ["idle", "big", "short"])  # what a post gets wrong
SCORE = st.sampled_from([0, 1, 2, 5, 9])
CLAIM_MODE = st.sampled_from(["right"] * 6 + ["score", "other", "proof", "dup"])
CHALLENGE_MODE = st.sampled_from(["right"] * 5 + ["tampered", "position", "proof", "entry"])
MINE = st.sampled_from([1, 2, 5, CW, CW + 1, PERIOD + 1])


class Events:
    """Decodes a contract's raw logs into ``(name, args in ABI order)``, addresses checksummed."""

    def __init__(self, abi: list[dict[str, Any]]) -> None:
        self.by_topic: dict[bytes, dict[str, Any]] = {}
        for e in abi:
            if e.get("type") == "event":
                sig = f"{e['name']}({','.join(abi_type(i) for i in e['inputs'])})"
                self.by_topic[keccak(text=sig)] = e

    def __call__(self, log: Any) -> tuple[str, tuple[Any, ...]]:
        e = self.by_topic[bytes(log["topics"][0])]
        topics = [bytes(t) for t in log["topics"][1:]]
        plain = [i for i in e["inputs"] if not i["indexed"]]
        data = iter(decode([abi_type(i) for i in plain], bytes(log["data"])))
        out = []
        for i in e["inputs"]:
            v = decode([abi_type(i)], topics.pop(0))[0] if i["indexed"] else next(data)
            out.append(to_checksum_address(v) if i["type"] == "address" else v)
        return e["name"], tuple(out)


# ---------------------------------------------------------------- one market per session
@dataclass
class World:
    m: Market
    snapshot: Any
    block: int  # the chain's block number at the snapshot: the bind's block
    deposited: int  # escrow + stakes + bond
    market: Views
    token: Views
    ledger: Views
    events: Events


@functools.lru_cache(maxsize=1)
def world() -> World:
    """The task of ``make_market`` with small terms, bound, and an eth-tester snapshot."""
    m = make_market(
        num_workers=N,
        rates=RATES,
        rounds=ROUNDS,
        epochs=EPOCHS,
        max_work_per_round=MAX_WORK,
        round_period=PERIOD,
        challenge_window=CW,
        cost_budget=COST_BUDGET,
        validator_bps=VALIDATOR_BPS,
    )
    fed = m.fed
    assert fed.contract.clients == [c.address for c in fed.clients]  # cached: survives reverts
    assert fed.round == 0 and fed.posted == {}
    chain = fed.chain
    tester = chain.w3.provider.ethereum_tester
    snapshot = tester.take_snapshot()
    deposited = m.terms.escrow + N * STAKE + BOND
    return World(
        m=m,
        snapshot=snapshot,
        block=chain.block_number,
        deposited=deposited,
        market=Views(tester, fed.admin.address, m.market.abi, m.market.address),
        token=Views(tester, fed.admin.address, m.token.abi, m.token.address),
        ledger=Views(tester, fed.admin.address, fed.contract.abi, fed.contract.address),
        events=Events(m.market.abi),
    )


def reset(w: World) -> None:
    """Back to the snapshot, with every client-side cache that depends on the chain cleared
    (the chain's nonces and log, the ledger wrapper's events, the fixtures' round state)."""
    m = w.m
    chain = m.fed.chain
    chain.w3.provider.ethereum_tester.revert_to_snapshot(w.snapshot)
    chain._nonces.clear()
    chain.log = TxLog()
    m.fed.contract.forget_events()
    m.fed.round = 0
    m.fed.model = H0
    m.fed.posted = {}
    m.entries = {}


def _why(text: str) -> bytes:
    return text.encode().ljust(32, b"\0")


# ---------------------------------------------------------------- the model
@dataclass
class LedgerRound:
    finalized: bool  # else aborted
    samples: dict[int, int]  # committed worker -> its commitment's sample count
    flagged: list[int]
    batch: bytes  # the one batch of packed commitments posted (b"": none)


@dataclass
class Scored:
    entries: list[Entry]
    leaves: list[bytes]
    posted_at: int
    total_score: int
    bonus_count: int
    validator_count: int
    cost: int
    cost_paid: int
    voided: bool = False


@dataclass
class Claim:
    round: int
    entry: Entry
    proof: list[bytes]


class MarketMachine(RuleBasedStateMachine):
    """Model: the ledger's rounds, the market's ``phase``, its scored rounds, what each account
    was credited and withdrew, the claims, stakes, slashing, bond and reclaim flags, and
    ``block`` (the chain's block number: eth-tester mines every transaction, accepted or
    refused, in a block of its own)."""

    # ------------------------------------------------------------ set-up
    @initialize(
        warm=st.sampled_from([0, 0, 1, 2, 3, 3]),
        flagged=SUBSET,
        fraud=st.booleans(),
        ahead=st.one_of(st.none(), st.none(), SUBSET),
        end=st.sampled_from([None, None, None, "close", "stall", "fault"]),
    )
    def start(
        self,
        warm: int,
        flagged: list[int],
        fraud: bool,
        ahead: list[int] | None,
        end: str | None,
    ) -> None:
        """Back to the snapshot; then ``warm`` rounds already done (all four commit, ``flagged``
        flagged in the first; honest entries posted, except, if ``fraud``, worker 3's work in
        the last, one unit more than committed), so that later phases are reached; then,
        unless ``ahead`` is None, the next ledger round, in which ``ahead`` commit; then, if
        ``end`` says so, the task closed (once every round is posted), stalled (once one is
        not) or faulted (the fraud proven)."""
        w = world()
        reset(w)
        self.w = w
        self.m = w.m
        self.fed = w.m.fed
        self.mk = w.m.market
        self.task = w.m.task
        self.view = w.market
        self.terms = w.m.terms
        assert self.fed.chain.block_number == w.block
        self.block = w.block
        self.bound_at = w.block
        self.deposited = w.deposited
        self.pools = self.terms.pools()
        self.ledger: list[LedgerRound] = []
        self.flags = [0] * N
        self.phase = Phase.RUNNING
        self.seen_phase = Phase.RUNNING
        self.next_round = 0
        self.scored: dict[int, Scored] = {}
        self.granted = 0
        self.cost_granted = 0
        self.claimed: set[tuple[int, int]] = set()  # (worker, round)
        self.pay_seen: dict[tuple[int, int], int] = {}  # (worker, round) -> payFor at claim
        self.round_pay = [0] * N
        self.stake_done: set[int] = set()
        self.slashed: set[int] = set()
        self.flagged_at_close: set[int] = set()
        self.attributable: bool | None = None  # at close
        self.slashed_total = 0
        self.honest = 0
        self.bond_settled = False
        self.reclaimed = False
        self.prover: str | None = None
        self.credited = dict.fromkeys(ACCOUNTS, 0)
        self.withdrawn = dict.fromkeys(ACCOUNTS, 0)
        self.credited_total = 0
        self.withdrawn_total = 0
        self.expected: list[tuple[str, tuple[Any, ...]]] = []  # events since the last check
        self.seen_credits = dict.fromkeys(ACCOUNTS, 0)  # from the Credited events
        self.seen_round_credits = [0] * N
        self.seen_withdrawals = dict.fromkeys(ACCOUNTS, 0)  # from the Withdrawn events
        self.zero_checked: set[int] = set()  # posted rounds checked once (fields, idle payFor)
        self.dirty = True
        self.checked_block = w.block
        fraud = warm > 0 and (fraud or end == "fault")
        event(f"start: warm {warm}, fraud {fraud}, ahead {ahead is not None}")
        event(f"start: end {end}")
        for r in range(warm):
            self.run_ledger_round(list(range(N)), flagged if r == 0 else [], [5] * N)
            entries = [Entry(i + 1, 5 * EPOCHS, i == 0) for i in range(N)]
            if fraud and r == warm - 1:
                entries[3] = Entry(4, 5 * EPOCHS + 1, False)
            assert self.do_post("aggregator", r, entries)
        if ahead is not None:
            self.run_ledger_round(ahead, flagged, [3, 4, 5, 4])
        if end == "close" and self.next_round == ROUNDS:
            self.mine(CW + 1)
            self.close("outsider")
            assert self.phase == Phase.CLOSED
        elif end == "stall" and self.next_round < ROUNDS:
            self.mine(self.due(self.next_round) - self.block)
            self.stall("requester")
            assert self.phase == Phase.STALLED
        elif end == "fault" and fraud:
            r, s = warm - 1, self.scored[warm - 1]
            proof = merkle_proof(s.leaves, 3)
            self.do_challenge("outsider", r, 3, s.entries[3], proof, 0, 3, self.ledger[r].batch)
            assert self.phase == Phase.FAULTED

    # ------------------------------------------------------------ helpers
    def account(self, name: str) -> LocalAccount:
        if name == "requester":
            return self.fed.admin
        if name == "aggregator":
            return self.fed.aggregator
        if name == "outsider":
            return self.fed.outsider
        return self.fed.clients[int(name[1:])]

    def addr(self, name: str) -> str:
        return self.account(name).address

    @staticmethod
    def worker_of(name: str) -> int | None:
        return int(name[1:]) if name in WORKERS else None

    def now(self) -> int:
        """The block the next transaction is mined in."""
        return self.block + 1

    def due(self, rnd: int) -> int:
        return self.bound_at + (rnd + 1) * PERIOD

    def grant_of(self, s: Scored) -> int:
        """What a scored round grants (the contract's _granted)."""
        g = s.cost_paid
        if s.total_score > 0:
            g += self.pools.reward
        if s.bonus_count > 0:
            g += self.pools.bonus
        if s.validator_count > 0:
            g += self.pools.validator
        return g

    def challenges_open(self) -> bool:
        """A stalled task whose last posted round can still be challenged."""
        if self.phase != Phase.STALLED or self.next_round == 0:
            return False
        return self.now() <= self.scored[self.next_round - 1].posted_at + CW

    def ledger_round(self, rnd: int) -> LedgerRound | None:
        return self.ledger[rnd] if 0 <= rnd < len(self.ledger) else None

    def pay(self, rnd: int, i: int, e: Entry) -> int:
        """payFor, from the terms and the scored round."""
        s = self.scored[rnd]
        amount = 0
        if e.score > 0 and s.total_score > 0:
            amount += self.pools.reward * e.score // s.total_score
        if e.bonus and s.bonus_count > 0:
            amount += self.pools.bonus // s.bonus_count
        if e.validator and s.validator_count > 0:
            amount += self.pools.validator // s.validator_count
        if e.work > 0 and s.cost > 0:
            amount += RATES[i] * e.work * s.cost_paid // s.cost
        return amount

    def credit(self, name: str, amount: int, why: str) -> None:
        if amount == 0:
            return  # _credit emits nothing for 0
        self.credited[name] += amount
        self.credited_total += amount
        self.expected.append(("Credited", (self.task, self.addr(name), amount, _why(why))))

    def end(self, phase: Phase) -> None:
        self.phase = phase
        self.expected.append(
            ("TaskEnded", (self.task, int(phase), self.slashed_total, self.honest))
        )

    def attempt(self, op: str, expected: str | None, send: Any) -> bool:
        return attempt(self, op, expected, send)

    @property
    def chain(self) -> Any:
        return self.fed.chain

    # ------------------------------------------------------------ the ledger (not under test)
    def run_ledger_round(
        self, committed: list[int], flagged: list[int], samples: list[int]
    ) -> None:
        """One finalized ledger round: ``committed`` commit (with ``samples``), ``flagged`` of
        them are flagged."""
        f = self.fed
        rnd = f.round
        committed, flagged = sorted(committed), sorted(set(flagged) & set(committed))
        f.open(list(range(N)))
        batch = b""
        if committed:
            signed = [f.signed(i, samples=samples[i]) for i in committed]
            recs = f.contract.post_commitments(f.aggregator, round=rnd, signed=signed)
            f.posted[rnd] = recs
            assert [r.batch for r in recs] == [0] * len(recs)
            batch = pack_records(recs, {c.address: i for i, c in enumerate(f.clients)})
        f.close_window()
        f.finalize(outcomes=[0] * len(committed), flagged=flagged)
        self.ledger.append(LedgerRound(True, {i: samples[i] for i in committed}, flagged, batch))
        for i in flagged:
            self.flags[i] += 1
        self.block = f.chain.block_number
        event(f"ledger round {rnd}: {len(committed)} committed, {len(flagged)} flagged")

    def abort_ledger_round(self, committed: list[int]) -> None:
        f = self.fed
        rnd = f.round
        f.open(list(range(N)))
        if committed:
            f.post(sorted(committed))
        f.chain.mine_to(int(f.contract.round_info(rnd)["opened_at"]) + TIMEOUT)
        f.contract.abort_round(f.outsider, round=rnd)
        f.round += 1
        self.ledger.append(LedgerRound(False, dict.fromkeys(committed, 5), [], b""))
        self.block = f.chain.block_number
        event(f"ledger round {rnd}: aborted")

    # ------------------------------------------------------------ market operations
    def do_post(self, sender: str, rnd: int, entries: list[Entry]) -> bool:
        def expect() -> str | None:
            if self.phase != Phase.RUNNING:
                return "MarketWrongPhase"
            if sender != "aggregator":
                return "MarketNotAggregator"
            if rnd != self.next_round or rnd >= ROUNDS:
                return "MarketRoundOutOfOrder"
            if self.now() > self.due(rnd):
                return "MarketTooLate"
            lr = self.ledger_round(rnd)
            if lr is None or not lr.finalized:
                return "MarketRoundNotFinalOnLedger"
            if len(entries) != N:
                return "MarketMalformedEntries"
            for i, e in enumerate(entries):
                if e != Entry():
                    if i not in lr.samples:
                        return "MarketNoCommitment"
                    if e.work > MAX_WORK:
                        return "MarketWorkTooLarge"
            return None

        want = expect()
        acct = self.account(sender)
        ok = self.attempt(
            "postRound", want, lambda: self.mk.post_round(acct, self.task, rnd, entries)
        )
        if not ok:
            return False
        leaves = self.mk.tree(self.task, rnd, entries)
        score = sum(e.score for e in entries)
        bonus = sum(e.bonus for e in entries)
        validators = sum(e.validator for e in entries)
        cost = sum(RATES[i] * e.work for i, e in enumerate(entries))
        cost_paid = min(cost, COST_BUDGET - self.cost_granted)
        self.cost_granted += cost_paid
        self.scored[rnd] = Scored(
            entries, leaves, self.block, score, bonus, validators, cost, cost_paid
        )
        self.granted += self.grant_of(self.scored[rnd])
        self.m.entries[rnd] = entries
        self.next_round = rnd + 1
        root = merkle_root(leaves)
        args = (
            self.task,
            rnd,
            root,
            score,
            bonus,
            validators,
            cost,
            cost_paid,
            pack_entries(entries),
        )
        self.expected.append(("RoundScored", args))
        event(f"post: cost paid {'in full' if cost_paid == cost else 'in part'}")
        return True

    def do_claim(self, sender: str, claims: list[Claim]) -> None:
        i = self.worker_of(sender)

        def expect() -> tuple[str | None, int]:
            if i is None:
                return "MarketNotWorker", 0
            done = set(self.claimed)
            total = 0
            for c in claims:
                s = self.scored.get(c.round)
                if s is None or s.voided or self.now() <= s.posted_at + CW:
                    return "MarketRoundNotPayable", 0
                if (i, c.round) in done:
                    return "MarketAlreadyClaimed", 0
                if c.entry != s.entries[i] or c.proof != merkle_proof(s.leaves, i):
                    return "MarketBadProof", 0
                done.add((i, c.round))
                total += self.pay(c.round, i, c.entry)
            if self.credited_total + total > self.deposited:
                return "MarketOverdrawn", 0
            return None, total

        want, total = expect()
        pays = []
        if want is None:
            assert i is not None
            for c in claims:  # payFor, the view, says what the model says
                pays.append(self.view("payFor", self.task, c.round, i, c.entry.as_tuple()))
                assert pays[-1] == self.pay(c.round, i, c.entry), f"payFor {c.round} worker {i}"
        acct = self.account(sender)
        arg = [(c.round, c.entry, c.proof) for c in claims]
        if not self.attempt("claim", want, lambda: self.mk.claim(acct, self.task, arg)):
            return
        assert i is not None
        for c, pay in zip(claims, pays, strict=True):
            self.claimed.add((i, c.round))
            self.pay_seen[(i, c.round)] = pay
            assert self.view("hasClaimed", self.task, i, c.round)
            if pay > 0:  # paid for a round: it committed in that round on the ledger
                assert self.w.ledger("hasCommitted", c.round, acct.address)
        self.round_pay[i] += total
        self.credit(sender, total, "rounds")
        event(f"claim: {len(claims)} round(s), {'paid' if total else 'nothing to pay'}")

    def do_challenge(
        self,
        sender: str,
        rnd: int,
        worker: int,
        entry: Entry,
        proof: list[bytes],
        batch: int,
        position: int,
        packed: bytes,
    ) -> None:
        def expect() -> str | None:
            if self.phase not in (Phase.RUNNING, Phase.STALLED):
                return "MarketWrongPhase"
            s = self.scored.get(rnd)
            if s is None or s.voided:
                return "MarketRoundNotPayable"
            if self.now() > s.posted_at + CW:
                return "MarketChallengeClosed"
            if entry != s.entries[worker] or proof != merkle_proof(s.leaves, worker):
                return "MarketBadProof"
            lr = self.ledger[rnd]
            if batch != 0 or not lr.batch or packed != lr.batch:
                return "MarketBadBatch"
            at = position * PACKED_SIZE
            if at + PACKED_SIZE > len(packed):
                return "MarketWrongEntry"
            if int.from_bytes(packed[at : at + 4], "big") != worker:
                return "MarketWrongEntry"
            if entry.work <= lr.samples[worker] * EPOCHS:
                return "MarketNotFraud"  # less work than committed is the aggregator's choice
            return None

        want = expect()
        acct = self.account(sender)

        def send() -> None:
            self.mk.challenge_work(
                acct,
                self.task,
                round=rnd,
                worker=worker,
                entry=entry,
                proof=proof,
                batch=batch,
                position=position,
                packed_batch=packed,
            )

        if not self.attempt("challengeWork", want, send):
            return
        event(f"fraud proven while {self.phase.name}")
        voided = self.scored[rnd]
        voided.voided = True  # nobody can claim it: its grant goes back to the requester
        self.granted -= self.grant_of(voided)
        self.cost_granted -= voided.cost_paid
        self.prover = sender
        self.expected.append(("FraudProven", (self.task, rnd, worker, self.addr(sender))))
        self.end(Phase.FAULTED)

    # ------------------------------------------------------------ rules: the ledger
    @precondition(lambda self: self.phase == Phase.RUNNING and len(self.ledger) < MAX_LEDGER_ROUNDS)
    @rule(
        committed=SUBSET,
        flagged=SUBSET,
        samples=SAMPLES,
        aborted=st.sampled_from([False] * 4 + [True]),
    )
    def ledger(
        self, committed: list[int], flagged: list[int], samples: list[int], aborted: bool
    ) -> None:
        """The ledger's next round: finalized (``committed`` commit, ``flagged`` of them are
        flagged) or, if ``aborted``, aborted after its timeout."""
        if aborted:
            TRAMPOLINE(self.abort_ledger_round, committed)
        else:
            TRAMPOLINE(self.run_ledger_round, committed, flagged, samples)

    @rule(k=MINE)
    def mine(self, k: int) -> None:
        self.m.mine(k)
        self.block += k
        assert self.fed.chain.block_number == self.block

    # ------------------------------------------------------------ rules: the market
    @rule(
        sender=SENDER_AGG,
        which=WHICH_ROUND,
        wrong=BREAK,
        fresh=st.one_of(st.none(), SUBSET),
        data=st.data(),
    )
    def post_round(
        self,
        sender: str,
        which: str,
        wrong: str | None,
        fresh: list[int] | None,
        data: st.DataObject,
    ) -> None:
        """Entries for committed workers: honest, zero, less or more work (the last a fraud);
        zero entries for the others; unless ``wrong``: a non-zero entry for an idle worker,
        work above maxWorkPerRound, or one entry too few. Unless ``fresh`` is None, the ledger
        round of the next task round first, if not there yet (``fresh`` commit)."""
        can = self.phase == Phase.RUNNING and len(self.ledger) < MAX_LEDGER_ROUNDS
        if fresh is not None and can and len(self.ledger) == self.next_round:
            flagged = data.draw(SUBSET, label="flagged")
            TRAMPOLINE(self.run_ledger_round, fresh, flagged, data.draw(SAMPLES, label="samples"))
        rnd = {
            "next": self.next_round,
            "prev": max(self.next_round - 1, 0),
            "skip": self.next_round + 1,
            "beyond": ROUNDS,
        }[which]
        lr = self.ledger_round(rnd)
        entries = []
        for i in range(N):
            if lr is not None and i in lr.samples:
                honest = lr.samples[i] * EPOCHS
                mode = data.draw(WORK_MODE, label=f"work {i}")
                work = {
                    "honest": honest,
                    "zero": 0,
                    "less": honest - 1,  # the aggregator's choice: not a fraud
                    "more": honest + 2,  # a fraud, within maxWorkPerRound
                }[mode]
                score = data.draw(SCORE, label=f"score {i}")
                bonus = data.draw(st.booleans(), label=f"bonus {i}")
                validator = data.draw(st.booleans(), label=f"validator {i}")
                entries.append(Entry(score, work, bonus, validator))
            else:
                entries.append(Entry())
        committed = sorted(lr.samples) if lr is not None else []
        idle = [i for i in range(N) if i not in committed]
        if wrong == "idle" and idle:
            i = data.draw(st.sampled_from(idle), label="idle worker")
            entries[i] = data.draw(IDLE_ENTRY, label="idle entry")
        elif wrong == "big" and committed:
            i = data.draw(st.sampled_from(committed), label="worker")
            entries[i] = replace(entries[i], work=MAX_WORK + 1)
        elif wrong == "short":
            entries = entries[:-1]
        self.do_post(sender, rnd, entries)

    @rule(k=st.sampled_from([1, 1, 1, 2, 0]), data=st.data())
    def claim(self, k: int, data: st.DataObject) -> None:
        """By a worker (mostly one that claimed before: claiming again is refused) or not."""
        again = sorted({f"w{j}" for j, _ in self.claimed})
        sender = data.draw(st.sampled_from(again * 4 + WORKER_SENDERS))
        i = self.worker_of(sender)
        me = 0 if i is None else i
        posted = sorted(self.scored)
        rounds = st.sampled_from(posted) if posted else st.integers(0, ROUNDS)
        claims: list[Claim] = []
        for _ in range(k):
            rnd = data.draw(st.one_of(rounds, st.integers(0, ROUNDS)) if posted else rounds)
            mode = data.draw(CLAIM_MODE, label="claim mode")
            if mode == "dup" and claims:
                claims.append(claims[-1])
                continue
            s = self.scored.get(rnd)
            if s is None:
                claims.append(Claim(rnd, Entry(score=1), []))
                continue
            entry, proof = s.entries[me], merkle_proof(s.leaves, me)
            if mode == "score":
                entry = replace(entry, score=entry.score + 1)
            elif mode == "other":
                j = (me + 1) % N
                entry, proof = s.entries[j], merkle_proof(s.leaves, j)
            elif mode == "proof":
                proof = proof[:-1]
            claims.append(Claim(rnd, entry, proof))
        self.do_claim(sender, claims)

    @rule(sender=SENDER_ANY, mode=CHALLENGE_MODE, data=st.data())
    def challenge(self, sender: str, mode: str, data: st.DataObject) -> None:
        posted = sorted(self.scored)
        rnd = data.draw(st.sampled_from(posted[-1:] * 3 + posted)) if posted else 0
        s = self.scored.get(rnd)
        lr = self.ledger_round(rnd)
        frauds = []  # workers whose posted work exceeds their commitment's
        if s is not None and lr is not None:
            frauds = [i for i in lr.samples if s.entries[i].work > lr.samples[i] * EPOCHS]
        worker = data.draw(st.sampled_from(frauds * 3 + list(range(N))), label="worker")
        entry = s.entries[worker] if s else Entry(work=1)
        proof = merkle_proof(s.leaves, worker) if s else []
        packed = lr.batch if lr else b""
        batch, position = 0, 0
        if lr is not None and worker in lr.samples:
            position = sorted(lr.samples).index(worker)
        if mode == "tampered" and packed:
            packed = packed[:-1] + bytes([packed[-1] ^ 1])
        elif mode == "position":
            position = data.draw(st.sampled_from([position + 1, len(packed) // PACKED_SIZE]))
        elif mode == "proof":
            proof = proof[1:]
        elif mode == "entry":
            entry = replace(entry, work=entry.work + 1)
        self.do_challenge(sender, rnd, worker, entry, proof, batch, position, packed)

    @rule(sender=SENDER_ANY)
    def stall(self, sender: str) -> None:
        if self.phase != Phase.RUNNING:
            want: str | None = "MarketWrongPhase"
        elif self.next_round >= ROUNDS:
            want = "MarketAllRoundsPosted"
        elif self.now() <= self.due(self.next_round):
            want = "MarketTooEarly"
        else:
            want = None
        acct = self.account(sender)
        if self.attempt("stall", want, lambda: self.mk.stall(acct, self.task)):
            self.end(Phase.STALLED)

    @rule(sender=SENDER_ANY)
    def close(self, sender: str) -> None:
        if self.phase != Phase.RUNNING:
            want: str | None = "MarketWrongPhase"
        elif self.next_round < ROUNDS:
            want = "MarketTooEarly"
        elif self.now() <= self.scored[ROUNDS - 1].posted_at + CW:
            want = "MarketTooEarly"
        else:
            want = None
        acct = self.account(sender)
        if not self.attempt("close", want, lambda: self.mk.close(acct, self.task)):
            return
        # the contract's rule: nobody is slashed once the ledger may have finalized a round
        # beyond the task's (its flags cannot be told apart from the task's own)
        count = len(self.ledger)
        beyond = self.ledger_round(ROUNDS)
        self.attributable = count <= ROUNDS or (
            count == ROUNDS + 1 and beyond is not None and not beyond.finalized
        )
        self.flagged_at_close = {i for i in range(N) if self.flags[i] > 0}
        on_chain = [self.w.ledger("flagsOf", c.address) for c in self.fed.clients]
        assert on_chain == self.flags
        if self.attributable:
            self.slashed = set(self.flagged_at_close)
        for i in sorted(self.slashed):
            self.expected.append(("Slashed", (self.task, i, STAKE)))
        self.slashed_total = len(self.slashed) * STAKE
        self.honest = N - len(self.slashed)
        event(f"close: {len(self.slashed)} slashed, attributable {self.attributable}")
        self.end(Phase.CLOSED)

    @rule(sender=SENDER_WORKER)
    def claim_stake(self, sender: str) -> None:
        i = self.worker_of(sender)
        if self.phase == Phase.RUNNING:
            want: str | None = "MarketWrongPhase"
        elif i is None:
            want = "MarketNotWorker"
        elif i in self.stake_done:
            want = "MarketDone"
        else:
            want = None
        acct = self.account(sender)
        if not self.attempt("claimStake", want, lambda: self.mk.claim_stake(acct, self.task)):
            return
        assert i is not None
        self.stake_done.add(i)
        if i in self.slashed:
            event("claimStake: slashed, nothing back")
            return
        amount = STAKE
        if self.phase == Phase.CLOSED and self.slashed_total > 0:
            amount += self.slashed_total // self.honest
        self.credit(sender, amount, "stake")

    @rule(sender=SENDER_ANY)
    def settle_bond(self, sender: str) -> None:
        if self.phase == Phase.RUNNING:
            want: str | None = "MarketWrongPhase"
        elif self.challenges_open():
            want = "MarketTooEarly"
        elif self.bond_settled:
            want = "MarketDone"
        else:
            want = None
        acct = self.account(sender)
        if not self.attempt("settleBond", want, lambda: self.mk.settle_bond(acct, self.task)):
            return
        self.bond_settled = True
        to = {Phase.STALLED: "requester", Phase.FAULTED: self.prover}.get(self.phase, "aggregator")
        assert to is not None
        event(f"settleBond: to the {to if to in ('requester', 'aggregator') else 'prover'}")
        self.credit(to, BOND, "bond")

    @rule(sender=SENDER_REQ)
    def reclaim(self, sender: str) -> None:
        if self.phase == Phase.RUNNING:
            want: str | None = "MarketWrongPhase"
        elif self.challenges_open():
            want = "MarketTooEarly"
        elif sender != "requester":
            want = "MarketNotRequester"
        elif self.reclaimed:
            want = "MarketDone"
        else:
            want = None
        acct = self.account(sender)
        if not self.attempt("reclaim", want, lambda: self.mk.reclaim(acct, self.task)):
            return
        self.reclaimed = True
        amount = self.terms.escrow - self.granted
        if self.phase == Phase.CLOSED and self.honest == 0:
            amount += self.slashed_total
        self.credit("requester", amount, "unspent")

    @rule(data=st.data())
    def withdraw(self, data: st.DataObject) -> None:
        """By anyone; mostly by an account owed something."""
        owing = [a for a in ACCOUNTS if self.credited[a] > self.withdrawn[a]]
        sender = data.draw(st.sampled_from(owing * 3 + list(ACCOUNTS)), label="sender")
        owed = self.credited[sender] - self.withdrawn[sender]
        want = "MarketNothingOwed" if owed == 0 else None
        acct = self.account(sender)
        before = self.w.token("balanceOf", acct.address)
        if not self.attempt("withdraw", want, lambda: self.mk.withdraw(acct, self.task)):
            assert self.w.token("balanceOf", acct.address) == before
            return
        assert self.w.token("balanceOf", acct.address) == before + owed
        self.withdrawn[sender] += owed
        self.withdrawn_total += owed
        self.expected.append(("Withdrawn", (self.task, acct.address, owed)))

    # ------------------------------------------------------------ invariants (read the chain)
    @invariant()
    def market_matches_model(self) -> None:
        TRAMPOLINE(self.check_market)

    def check_market(self) -> None:
        """After every step. Views are functions of the storage, which only an accepted
        transaction changes: after a step of refused calls, ledger rounds and mining, the
        market must show no new event; after an accepted one, everything is compared."""
        chain, view, task = self.fed.chain, self.view, self.task
        assert chain.block_number == self.block
        logs = chain.w3.eth.get_logs(
            {"address": self.mk.address, "fromBlock": self.checked_block + 1, "toBlock": "latest"}
        )
        self.checked_block = self.block
        got = [self.w.events(lg) for lg in logs]
        assert got == self.expected, f"events: {got} != {self.expected}"
        self.expected = []
        if not self.dirty:
            return
        self.dirty = False
        for name, args in got:
            if name == "Credited":
                who = next(a for a in ACCOUNTS if self.addr(a) == args[1])
                self.seen_credits[who] += args[2]
                if args[3] == _why("rounds"):
                    self.seen_round_credits[int(who[1:])] += args[2]
            elif name == "Withdrawn":
                who = next(a for a in ACCOUNTS if self.addr(a) == args[1])
                self.seen_withdrawals[who] += args[2]

        # the task's accounts and phase
        phase, _, ledger, workers, next_round, deposited, credited, granted, slashed_total = view(
            "taskInfo", task
        )
        phase = Phase(phase)
        assert phase == self.phase
        assert (self.seen_phase, phase) in ALLOWED or self.seen_phase == phase
        self.seen_phase = phase
        assert to_checksum_address(ledger) == self.fed.contract.address and workers == N
        assert next_round == self.next_round and granted == self.granted
        assert deposited == self.deposited and credited == self.credited_total
        assert slashed_total == self.slashed_total

        # token conservation: nothing credited beyond what the task took in, nothing paid out
        # beyond what was credited
        assert credited <= deposited
        assert self.w.token("balanceOf", self.mk.address) == deposited - self.withdrawn_total
        owed = {a: view("owed", task, self.addr(a)) for a in ACCOUNTS}
        assert sum(owed.values()) + self.withdrawn_total == credited
        for a in ACCOUNTS:
            assert owed[a] == self.credited[a] - self.withdrawn[a], a
            assert self.seen_credits[a] == self.credited[a], a
            assert self.seen_withdrawals[a] + owed[a] == self.seen_credits[a], a  # once each

        # round pay: only for claimed rounds, as payFor says; nothing for an idle worker
        for i in range(N):
            claimed = [r for (j, r) in self.claimed if j == i]
            assert self.round_pay[i] == sum(self.pay_seen[(i, r)] for r in claimed)
            assert self.seen_round_credits[i] == self.round_pay[i]
        for rnd, s in self.scored.items():
            if rnd in self.zero_checked:
                continue
            self.zero_checked.add(rnd)
            info = view("scoredRound", task, rnd)
            assert info == (
                merkle_root(s.leaves),
                s.total_score,
                s.bonus_count,
                s.validator_count,
                s.posted_at,
                s.voided,
                s.cost,
                s.cost_paid,
            ), f"round {rnd}"
            for i in range(N):
                if i not in self.ledger[rnd].samples:
                    assert s.entries[i] == Entry()
                    assert view("payFor", task, rnd, i, s.entries[i].as_tuple()) == 0
        for rnd, s in self.scored.items():
            if s.voided:
                assert view("scoredRound", task, rnd)[5]

        # slashing: only flagged workers, only at close, all of them when attributable
        for i, client in enumerate(self.fed.clients):
            slashed = view("isSlashed", task, i)
            assert slashed == (i in self.slashed)
            if slashed:
                assert phase == Phase.CLOSED and self.w.ledger("flagsOf", client.address) > 0
        if phase == Phase.CLOSED and self.attributable:
            assert self.slashed == self.flagged_at_close
        if self.phase == Phase.CLOSED:
            assert self.slashed <= self.flagged_at_close


MarketMachine.TestCase.settings = MACHINE_SETTINGS
TestStatefulMarket = MarketMachine.TestCase


def test_snapshot_revert_restores_the_market() -> None:
    """What the machine relies on: a revert restores the block number, the market's and the
    ledger's state and the token balances, and the cleared caches let the same transactions
    be sent again."""
    w = world()
    reset(w)
    m, fed, mk, task = w.m, w.m.fed, w.m.market, w.m.task
    worker = fed.clients[0]
    start_balance = m.token.balance_of(worker.address)
    assert fed.chain.block_number == w.block
    assert mk.task_info(task)["phase"] == Phase.RUNNING
    assert m.token.balance_of(mk.address) == w.deposited
    m.ledger_round([0, 1])
    entries = [Entry(1, 10, False), Entry(2, 10, True), Entry(), Entry()]
    m.post(0, entries)
    m.finish_window()
    m.claim(0, [0])
    mk.withdraw(worker, task)
    info = mk.task_info(task)
    assert info["next_round"] == 1 and info["credited"] > 0
    assert m.token.balance_of(worker.address) == start_balance + info["credited"]
    assert w.market("hasClaimed", task, 0, 0) and mk.scored_round(task, 0)["posted_at"] > 0
    reset(w)
    assert fed.chain.block_number == w.block and fed.round == 0 and m.entries == {}
    info = mk.task_info(task)
    assert info["next_round"] == 0 and info["credited"] == 0 and info["granted"] == 0
    assert mk.scored_round(task, 0)["posted_at"] == 0 and not w.market("hasClaimed", task, 0, 0)
    assert m.token.balance_of(worker.address) == start_balance
    assert m.token.balance_of(mk.address) == w.deposited
    assert fed.contract.round_count() == 0 and fed.chain.log.records == []
    # the nonce cache was cleared: the same accounts send again from the snapshot's nonces
    m.ledger_round([2])
    m.post(0, [Entry(), Entry(), Entry(3, 10, False), Entry()])
    assert mk.task_info(task)["next_round"] == 1
    assert mk.scored_round(task, 0)["total_score"] == 3
    reset(w)
    assert mk.task_info(task)["next_round"] == 0 and fed.contract.round_count() == 0
