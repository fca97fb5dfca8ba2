"""A Hypothesis state machine against the FedLedger contract on the embedded chain.

Random call sequences by random senders (the admin, the aggregator, each client, an outsider)
go to one deployed contract; a small Python model of the contract's rules says, for every call,
whether it must be accepted and, if not, which custom error the contract must give (the first
requirement the call breaks, in the order the contract documents and checks them). After every
step the invariants compare the chain (views and events) with the model.

The machine runs in two variants, drawn per sequence: without a committee (``plain``) and with a
committee of two (``committee``: ``selectCommittee`` and ``postVotes`` gate the outcomes). Both
contracts are deployed on one chain and the chain is brought back to a snapshot taken after
deployment and registration before every sequence (far cheaper than a fresh chain).

Halting: after a fraud proof the contract refuses every call that opens, fills or closes a round
(``FedLedgerHalted``); ``abortRound`` (no halt check: an open round can still be aborted after its
deadline) and further ``proveBadSignature`` calls (which only mark rounds fraudulent) stay
possible, as the contract documents. The invariant checks that nothing else changes: the round
count, the global model, the flags, the exclusions, the commitments and the votes stay frozen.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from typing import Any

import eth_tester  # noqa: F401  py-evm raises the recursion limit on import: not mid-test
import hypothesis.strategies as st
from eth_account.signers.local import LocalAccount
from hypothesis import event
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from ledger_fixtures import H0, Fed, make_fed
from machine_helpers import MACHINE_SETTINGS, TRAMPOLINE, Views, attempt

from fedledger.ledger.chain import TxLog
from fedledger.ledger.contract import (
    ABORTED,
    FINALIZED,
    GAS_POST,
    GAS_POST_WORD,
    GAS_VOTES,
    OPEN,
    pack_votes,
)
from fedledger.ledger.signing import (
    Commitment,
    SignedCommitment,
    SignedVote,
    keccak,
    sign_commitment,
    sign_vote,
)

N = 4  # registered clients
CPR = 3  # clients per round (so a selection of all four is too many)
COMMITTEE = 2  # committee size in the "committee" variant (a majority: both votes)
MAX_FLAGS = 2
WINDOW = 6  # submission window (blocks after the last post; every transaction mines one)
TIMEOUT = 16  # round timeout (blocks after opening)
MAX_OUTCOME = 8
PACKED = 108
NONE_STATUS = 0

ACCOUNTS = ("aggregator", "admin", "outsider", "c0", "c1", "c2", "c3")
SENDER_AGG = st.sampled_from(["aggregator"] * 7 + ["admin", "outsider", "c1"])
SENDER_ANY = st.sampled_from(ACCOUNTS)
SENDER_CLIENT = st.sampled_from(["c0", "c1", "c2", "c3"] * 2 + ["outsider", "admin", "aggregator"])
WHICH_ROUND = st.sampled_from(["last"] * 6 + ["next", "first", "prev"])
SAMPLES = st.sampled_from([5] * 4 + [0, 1, 2**64 - 1])
FORGERY = st.sampled_from(["other", "round", "base", "garbage"])  # signatures not the client's
SIG_MODE = st.one_of(st.just("good"), FORGERY)
GLOBALS = [hashlib.sha256(f"global {k}".encode()).digest() for k in range(3)] + [H0]
BASE_MODE = st.sampled_from(["current"] * 6 + ["stale", "random"])


def _views(fed: Fed) -> Views:
    tester = fed.chain.w3.provider.ethereum_tester
    return Views(tester, fed.admin.address, fed.contract.abi, fed.contract.address)


# ---------------------------------------------------------------- one federation per session
@dataclass
class World:
    feds: dict[str, Fed]
    views: dict[str, Views]
    snapshot: Any
    block: int  # the chain's block number at the snapshot


@functools.lru_cache(maxsize=1)
def world() -> World:
    """Two contracts (no committee / a committee of two) on one chain, clients registered
    and funded, and an eth-tester snapshot of that state."""
    common = dict(
        num_clients=N, clients_per_round=CPR, max_flags=MAX_FLAGS, window=WINDOW, timeout=TIMEOUT
    )
    plain = make_fed(**common)
    committee = make_fed(committee_size=COMMITTEE, chain=plain.chain, **common)
    for fed in (plain, committee):  # the registration cache must survive every revert
        assert fed.contract.clients == [c.address for c in fed.clients]
    snapshot = plain.chain.w3.provider.ethereum_tester.take_snapshot()
    feds = {"plain": plain, "committee": committee}
    views = {k: _views(f) for k, f in feds.items()}
    return World(feds, views, snapshot, plain.chain.block_number)


def reset(w: World) -> None:
    """Back to the snapshot, with every client-side cache that depends on the chain cleared."""
    chain = w.feds["plain"].chain
    chain.w3.provider.ethereum_tester.revert_to_snapshot(w.snapshot)
    chain._nonces.clear()
    chain.log = TxLog()
    for fed in w.feds.values():
        fed.contract.forget_events()


# ---------------------------------------------------------------- the model
@dataclass
class Entry:
    """One packed commitment as posted."""

    client: int  # registration index (N or more: unknown)
    update: bytes
    samples: int
    r: bytes
    vs: bytes
    valid: bool  # carries the client's signature of (round, round's base, update, samples)

    def packed(self) -> bytes:
        return (
            self.client.to_bytes(4, "big")
            + self.update
            + self.samples.to_bytes(8, "big")
            + self.r
            + self.vs
        )


@dataclass
class Batch:
    packed: bytes
    entries: list[Entry]


@dataclass
class RoundModel:
    selected: frozenset[int]
    base: bytes
    opened_at: int
    window_end: int
    status: int = OPEN
    committed: list[int] = field(default_factory=list)  # client indices, in commitment order
    batches: list[Batch] = field(default_factory=list)
    digest: bytes = bytes(32)
    members: frozenset[int] | None = None
    voted: set[int] = field(default_factory=set)
    tally: list[int] | None = None
    num_votes: int = 0
    global_hash: bytes = bytes(32)
    outcomes: list[int] | None = None
    flagged: list[int] = field(default_factory=list)
    fraudulent: bool = False


@dataclass
class VoteSpec:
    member: int  # registration index; N: the outsider
    accept: list[int]
    mode: str  # good | other (signed by another key) | stale (wrong digest) | byte (accept 2)


def _bitmap_error(indices: list[int], excluded: set[int]) -> str | None:
    """What _storeBitmap refuses first: per 32-byte word in order, an unknown index, then an
    excluded one."""
    for w in sorted({i >> 8 for i in indices}):
        word = [i for i in indices if i >> 8 == w]
        if any(i >= N for i in word):
            return "FedLedgerUnknownClient"
        if any(i in excluded for i in word):
            return "FedLedgerClientExcluded"
    return None


class LedgerMachine(RuleBasedStateMachine):
    """Model: ``rounds`` (all opened), ``model_hash``, ``flags``, ``excluded``, ``halted_by``,
    ``block`` (the chain's block number: eth-tester mines every transaction, accepted or
    refused, in a block of its own; a mining step adds k)."""

    # ------------------------------------------------------------ set-up
    @initialize(
        variant=st.sampled_from(["plain", "committee"]),
        warm=st.sampled_from(["cold", "warm", "forged"]),
    )
    def start(self, variant: str, warm: str) -> None:
        """Back to the snapshot; unless ``cold``, one round first (clients 0 and 1 flagged:
        one more flag excludes them), in which, if ``forged``, client 2's commitment was
        posted with another client's signature (a fraud proof is ready to halt the ledger)."""
        w = world()
        reset(w)
        self.fed = w.feds[variant]
        self.c = self.fed.contract
        self.views = w.views[variant]
        self.committee = COMMITTEE if variant == "committee" else 0
        self.block = w.block
        self.rounds: list[RoundModel] = []
        self.model_hash = H0
        self.previous_hashes: list[bytes] = []
        self.flags = [0] * N
        self.excluded: set[int] = set()
        self.halted_by: int | None = None
        self.frozen: tuple[Any, ...] | None = None
        self.serial = 0  # makes update hashes distinct
        self.dirty = True  # an accepted transaction since the last full check
        self.checked_block = w.block  # events read up to this block
        self.logs: list[Any] = []  # the contract's logs since the snapshot
        assert self.fed.chain.block_number == w.block and self.c.round_count() == 0
        event(f"variant {variant}")
        event(f"start {warm}")
        if warm != "cold":
            self.warm_up(forged=warm == "forged")

    def warm_up(self, *, forged: bool) -> None:
        assert self.do_open("aggregator", 0, H0, [0, 1, 2])
        modes = ["good", "good", "other" if forged else "good"]
        entries = [self.make_entry(0, i, 5, m) for i, m in zip((0, 1, 2), modes, strict=True)]
        assert self.do_post("aggregator", 0, entries)
        self.close_window(self.rounds[0])
        if self.committee:
            assert self.do_select("aggregator", 0, [0, 1])
            specs = [VoteSpec(m, [1, 1, 1], "good") for m in (0, 1)]
            assert self.do_votes("aggregator", 0, specs)
        assert self.do_finalize("aggregator", 0, GLOBALS[2], [0, 0, 0], [0, 1])

    # ------------------------------------------------------------ helpers
    def account(self, name: str) -> LocalAccount:
        if name == "aggregator":
            return self.fed.aggregator
        if name == "admin":
            return self.fed.admin
        if name == "outsider":
            return self.fed.outsider
        return self.fed.clients[int(name[1:])]

    def client_account(self, index: int) -> LocalAccount:
        return self.fed.clients[index] if index < N else self.fed.outsider

    def round_of(self, rnd: int) -> RoundModel | None:
        return self.rounds[rnd] if 0 <= rnd < len(self.rounds) else None

    def pick_round(self, which: str) -> int:
        n = len(self.rounds)
        return {"last": max(n - 1, 0), "next": n, "first": 0, "prev": max(n - 2, 0)}[which]

    def eligible(self) -> list[int]:
        return [i for i in range(N) if i not in self.excluded]

    def update_hash(self, client: int, rnd: int) -> bytes:
        self.serial += 1
        return hashlib.sha256(f"update {client} {rnd} {self.serial}".encode()).digest()

    def attempt(self, op: str, expected: str | None, send: Any) -> bool:
        return attempt(self, op, expected, send)

    @property
    def chain(self) -> Any:
        return self.fed.chain

    def freeze(self) -> tuple[Any, ...]:
        """What no call may change once the ledger is halted."""
        return (
            len(self.rounds),
            self.model_hash,
            tuple(self.flags),
            frozenset(self.excluded),
            tuple(
                (
                    tuple(r.committed),
                    len(r.batches),
                    r.digest,
                    r.members,
                    r.num_votes,
                    r.outcomes is not None,
                )
                for r in self.rounds
            ),
        )

    def make_entry(self, rnd: int, client: int, samples: int, mode: str) -> Entry:
        r = self.round_of(rnd)
        base = r.base if r is not None else self.model_hash
        update = self.update_hash(client, rnd)
        signer = self.client_account(client)
        if mode == "other":
            signer = self.fed.clients[(client + 1) % N] if client < N else self.fed.admin
        c = Commitment(
            round=rnd + 1 if mode == "round" else rnd,
            base_model_hash=hashlib.sha256(b"not the base").digest() if mode == "base" else base,
            update_hash=update,
            num_samples=samples,
        )
        s = sign_commitment(c, account=signer, domain=self.c.domain)
        sig_r, sig_vs = s.r, s.vs
        if mode == "garbage":
            sig_r, sig_vs = keccak(update), keccak(keccak(update))
        return Entry(client, update, samples, sig_r, sig_vs, valid=mode == "good" and client < N)

    # ------------------------------------------------------------ operations: predict, send, update
    def open_expect(
        self,
        rnd: int,
        base: bytes,
        selected: list[int],
        *,
        previous_open: bool,
        model_hash: bytes,
        excluded: set[int],
    ) -> str | None:
        """The error openRound must give (None: accepted), on the given state."""
        if self.halted_by is not None:
            return "FedLedgerHalted"
        if rnd != len(self.rounds):
            return "FedLedgerRoundOutOfOrder"
        if rnd > 0 and previous_open:
            return "FedLedgerPreviousRoundOpen"
        if base != model_hash:
            return "FedLedgerBaseModelMismatch"
        bad = _bitmap_error(selected, excluded)
        if bad:
            return bad
        if len(selected) > CPR:
            return "FedLedgerTooManySelected"
        return None

    def do_open(self, sender: str, rnd: int, base: bytes, selected: list[int]) -> bool:
        def expect() -> str | None:
            if sender != "aggregator":
                return "AccessControlUnauthorizedAccount"
            previous_open = rnd > 0 and rnd <= len(self.rounds) and self.rounds[rnd - 1].status == OPEN
            return self.open_expect(
                rnd,
                base,
                selected,
                previous_open=previous_open,
                model_hash=self.model_hash,
                excluded=self.excluded,
            )

        ok = self.attempt(
            "openRound",
            expect(),
            lambda: self.c.open_round(
                self.account(sender), round=rnd, base_model_hash=base, selected=selected
            ),
        )
        if ok:
            self.apply_open(base, selected)
        return ok

    def apply_open(self, base: bytes, selected: list[int]) -> None:
        self.rounds.append(
            RoundModel(
                selected=frozenset(selected),
                base=base,
                opened_at=self.block,
                window_end=self.block + WINDOW,
            )
        )

    def do_post(self, sender: str, rnd: int, entries: list[Entry], raw: bool = False) -> bool:
        r = self.round_of(rnd)
        tx_block = self.block + 1

        def expect() -> str | None:
            if sender != "aggregator":
                return "AccessControlUnauthorizedAccount"
            if self.halted_by is not None:
                return "FedLedgerHalted"
            if r is None or r.status != OPEN:
                return "FedLedgerRoundNotOpen"
            if tx_block > r.window_end:
                return "FedLedgerWindowClosed"
            seen = set(r.committed)
            prev = -1
            for k, e in enumerate(entries):
                if e.client >= N:
                    return "FedLedgerUnknownClient"
                if k > 0 and e.client <= prev:
                    return "FedLedgerNotAscending"
                if e.client not in r.selected:
                    return "FedLedgerNotSelected"
                if e.client in seen:
                    return "FedLedgerDuplicateCommitment"
                if e.samples == 0:
                    return "FedLedgerZeroSamples"
                seen.add(e.client)
                prev = e.client
            return None

        packed = b"".join(e.packed() for e in entries)
        account = self.account(sender)
        returned: list[Any] = []

        def send() -> None:
            if raw or not entries or any(e.client >= N for e in entries):
                fn = self.c.contract.functions.postCommitments(rnd, packed)
                gas = GAS_POST[0] + GAS_POST[1] * len(entries) + GAS_POST_WORD
                self.c._send(account, fn, gas=gas, label="postCommitments", round=rnd)
                return
            signed = [
                SignedCommitment(
                    commitment=Commitment(rnd, bytes(32), e.update, e.samples),
                    client=self.fed.addr(e.client),
                    r=e.r,
                    vs=e.vs,
                )
                for e in entries
            ]
            returned.extend(self.c.post_commitments(account, round=rnd, signed=signed))

        ok = self.attempt("postCommitments", expect(), send)
        if ok:
            assert r is not None
            if returned:  # the wrapper's records are what was posted, at the model's indices
                assert [
                    (x.index, x.client, x.update_hash, x.batch, x.position) for x in returned
                ] == [
                    (len(r.committed) + k, self.fed.addr(e.client), e.update, len(r.batches), k)
                    for k, e in enumerate(entries)
                ]
            r.committed.extend(e.client for e in entries)
            r.batches.append(Batch(packed, list(entries)))
            r.digest = keccak(r.digest + keccak(packed))
            r.window_end = tx_block + WINDOW
        return ok

    def do_submit(self, sender: str, rnd: int, samples: int) -> bool:
        r = self.round_of(rnd)
        index = int(sender[1:]) if sender.startswith("c") else None
        update = self.update_hash(N if index is None else index, rnd)

        def expect() -> str | None:
            if self.halted_by is not None:
                return "FedLedgerHalted"
            if r is None or r.status != OPEN:
                return "FedLedgerRoundNotOpen"
            if self.block + 1 > r.window_end:
                return "FedLedgerWindowClosed"
            if index is None:
                return "FedLedgerNotRegistered"
            if index not in r.selected:
                return "FedLedgerNotSelected"
            if index in r.committed:
                return "FedLedgerDuplicateCommitment"
            if samples == 0:
                return "FedLedgerZeroSamples"
            return None

        account = self.account(sender)
        records: list[Any] = []
        ok = self.attempt(
            "submitCommitment",
            expect(),
            lambda: records.append(
                self.c.submit_commitment(
                    account, round=rnd, update_hash=update, num_samples=samples
                )
            ),
        )
        if ok:
            assert r is not None and index is not None
            (rec,) = records
            assert (rec.index, rec.client, rec.update_hash, rec.num_samples) == (
                len(r.committed),
                account.address,
                update,
                samples,
            )
            r.committed.append(index)
            r.digest = keccak(
                r.digest + bytes.fromhex(account.address[2:]) + update + samples.to_bytes(8, "big")
            )
        return ok

    def do_mine(self, k: int) -> None:
        TRAMPOLINE(self.fed.chain.mine_to, self.block + k)
        self.block += k
        event("mine")

    def do_select(self, sender: str, rnd: int, members: list[int]) -> bool:
        r = self.round_of(rnd)

        def expect() -> str | None:
            if sender != "aggregator":
                return "AccessControlUnauthorizedAccount"
            if not self.committee:
                return "FedLedgerNoCommitteeConfigured"
            if self.halted_by is not None:
                return "FedLedgerHalted"
            if r is None or r.status != OPEN:
                return "FedLedgerRoundNotOpen"
            if self.block + 1 <= r.window_end:
                return "FedLedgerWindowOpen"
            if r.members is not None:
                return "FedLedgerCommitteeAlreadySelected"
            bad = _bitmap_error(members, self.excluded)
            if bad:
                return bad
            expected = min(self.committee, N - len(self.excluded))
            if not members or len(members) != expected:
                return "FedLedgerCommitteeSize"
            return None

        ok = self.attempt(
            "selectCommittee",
            expect(),
            lambda: self.c.select_committee(self.account(sender), round=rnd, members=members),
        )
        if ok:
            assert r is not None
            r.members = frozenset(members)
        return ok

    def do_votes(self, sender: str, rnd: int, specs: list[VoteSpec], ragged: bool = False) -> bool:
        r = self.round_of(rnd)
        n = len(r.committed) if r is not None else 0
        digest = r.digest if r is not None else bytes(32)
        votes = []
        for v in specs:
            member = self.client_account(v.member)
            signer = self.fed.clients[(v.member + 1) % N] if v.mode == "other" else member
            accept = list(v.accept)
            if v.mode == "byte" and accept:
                accept[0] = 2
            s = sign_vote(
                round=rnd,
                commitments_digest=keccak(b"stale") if v.mode == "stale" else digest,
                accept=bytes(accept),
                account=signer,
                domain=self.c.domain,
            )
            votes.append(SignedVote(rnd, s.commitments_digest, member.address, s.accept, s.r, s.vs))

        def expect() -> str | None:
            if sender != "aggregator":
                return "AccessControlUnauthorizedAccount"
            if self.halted_by is not None:
                return "FedLedgerHalted"
            if r is None or r.status != OPEN:
                return "FedLedgerRoundNotOpen"
            if r.members is None:
                return "FedLedgerCommitteeNotSelected"
            if ragged:
                return "FedLedgerMalformedPacking"
            voted = set(r.voted)
            for v, sv in zip(specs, votes, strict=True):
                if v.member >= N or v.member not in r.members:
                    return "FedLedgerNotCommitteeMember"
                if v.member in voted:
                    return "FedLedgerAlreadyVoted"
                if v.mode in ("other", "stale"):
                    return "FedLedgerBadVoteSignature"
                if any(a > 1 for a in sv.accept):
                    return "FedLedgerMalformedVote"
                voted.add(v.member)
            return None

        account = self.account(sender)

        def send() -> None:
            if ragged or not votes:
                packed = pack_votes(votes) + (b"\x00" if ragged else b"")
                fn = self.c.contract.functions.postVotes(rnd, packed)
                gas = GAS_VOTES[0] + len(votes) * (GAS_VOTES[1] + GAS_VOTES[2] * n) + 50_000
                self.c._send(account, fn, gas=gas, label="postVotes", round=rnd)
            else:
                self.c.post_votes(account, round=rnd, votes=votes)

        ok = self.attempt("postVotes", expect(), send)
        if ok:
            assert r is not None
            if r.tally is None:
                r.tally = [0] * n
            for v, sv in zip(specs, votes, strict=True):
                r.voted.add(v.member)
                for i, a in enumerate(sv.accept):
                    r.tally[i] += a
            r.num_votes += len(votes)
        return ok

    def accepted(self, r: RoundModel, i: int) -> bool:
        """Whether commitment i of the round may enter the aggregation (outcome 0)."""
        size = len(r.members) if r.members else 0
        if size == 0:
            return True
        yes = r.tally[i] if r.tally is not None and i < len(r.tally) else 0
        return 2 * yes > size

    def finalize_expect(
        self, sender: str, rnd: int, outcomes: list[int], flagged: list[int]
    ) -> str | None:
        """The error finalizeRound must give (None: accepted)."""
        r = self.round_of(rnd)
        if sender != "aggregator":
            return "AccessControlUnauthorizedAccount"
        if self.halted_by is not None:
            return "FedLedgerHalted"
        if r is None or r.status != OPEN:
            return "FedLedgerRoundNotOpen"
        if self.block + 1 <= r.window_end:
            return "FedLedgerWindowOpen"
        if len(outcomes) != len(r.committed):
            return "FedLedgerOutcomesMismatch"
        if self.committee and r.members is None:
            return "FedLedgerCommitteeNotSelected"
        for i, code in enumerate(outcomes):
            if code > MAX_OUTCOME:
                return "FedLedgerUnknownOutcome"
            if code == 0 and not self.accepted(r, i):
                return "FedLedgerNotAccepted"
        for k, f in enumerate(flagged):
            if k > 0 and f <= flagged[k - 1]:
                return "FedLedgerNotAscending"
            if f >= N:
                return "FedLedgerUnknownClient"
            if f not in r.committed:
                return "FedLedgerFlagNotCommitted"
        return None

    def apply_finalize(
        self, rnd: int, global_hash: bytes, outcomes: list[int], flagged: list[int]
    ) -> None:
        r = self.round_of(rnd)
        assert r is not None
        r.status = FINALIZED
        r.global_hash = global_hash
        r.outcomes = list(outcomes)
        r.flagged = list(flagged)
        self.previous_hashes.append(self.model_hash)
        self.model_hash = global_hash
        for f in flagged:
            self.flags[f] += 1
            if self.flags[f] == MAX_FLAGS:
                self.excluded.add(f)
                event("client excluded")

    def do_finalize(
        self, sender: str, rnd: int, global_hash: bytes, outcomes: list[int], flagged: list[int]
    ) -> bool:
        ok = self.attempt(
            "finalizeRound",
            self.finalize_expect(sender, rnd, outcomes, flagged),
            lambda: self.c.finalize_round(
                self.account(sender),
                round=rnd,
                global_model_hash=global_hash,
                outcomes=outcomes,
                flagged=flagged,
            ),
        )
        if ok:
            self.apply_finalize(rnd, global_hash, outcomes, flagged)
        return ok

    def do_finalize_and_open(
        self,
        sender: str,
        rnd: int,
        global_hash: bytes,
        outcomes: list[int],
        flagged: list[int],
        selected: list[int],
    ) -> bool:
        """Both calls in one transaction: finalize's checks, then open's on the state
        finalize leaves (round rnd closed, the new model, the new exclusions); all or nothing."""
        expected = self.finalize_expect(sender, rnd, outcomes, flagged)
        if expected is None:
            newly = {f for f in flagged if self.flags[f] + 1 == MAX_FLAGS}
            expected = self.open_expect(
                rnd + 1,
                global_hash,
                selected,
                previous_open=False,
                model_hash=global_hash,
                excluded=self.excluded | newly,
            )
        ok = self.attempt(
            "finalizeAndOpen",
            expected,
            lambda: self.c.finalize_and_open(
                self.account(sender),
                round=rnd,
                global_model_hash=global_hash,
                outcomes=outcomes,
                flagged=flagged,
                selected=selected,
            ),
        )
        if ok:
            self.apply_finalize(rnd, global_hash, outcomes, flagged)
            self.apply_open(global_hash, selected)
        return ok

    def do_abort(self, sender: str, rnd: int) -> bool:
        r = self.round_of(rnd)

        def expect() -> str | None:
            if r is None or r.status != OPEN:
                return "FedLedgerRoundNotOpen"
            if self.block + 1 <= r.opened_at + TIMEOUT:
                return "FedLedgerDeadlineNotReached"
            return None

        ok = self.attempt(
            "abortRound", expect(), lambda: self.c.abort_round(self.account(sender), round=rnd)
        )
        if ok:
            assert r is not None
            r.status = ABORTED
            if self.halted_by is not None:
                event("abortRound after the halt")
        return ok

    def do_prove(
        self, sender: str, rnd: int, batch: int, position: int, packed: bytes, client: str
    ) -> bool:
        r = self.round_of(rnd)

        def expect() -> str | None:
            if r is None or batch >= len(r.batches) or packed != r.batches[batch].packed:
                return "FedLedgerUnknownBatch"
            if position >= len(packed) // PACKED:
                return "FedLedgerBadPosition"
            e = r.batches[batch].entries[position]
            if e.client >= N or self.fed.addr(e.client) != client:
                return "FedLedgerWrongClient"
            if e.valid:
                return "FedLedgerSignatureValid"
            return None

        ok = self.attempt(
            "proveBadSignature",
            expect(),
            lambda: self.c.prove_bad_signature(
                self.account(sender),
                round=rnd,
                batch=batch,
                position=position,
                packed=packed,
                client=client,
            ),
        )
        if ok:
            assert r is not None
            r.fraudulent = True
            if self.halted_by is None:
                self.halted_by = rnd
                self.frozen = self.freeze()
                event("halted")
        return ok

    # ------------------------------------------------------------ argument builders
    # Each builds the arguments of a call that the contract should accept in the current
    # state, with at most one named defect (None: none); the model decides what happens.
    def draw_defect(self, data: st.DataObject, defects: list[str]) -> str | None:
        """No defect two times in three."""
        return data.draw(st.sampled_from([None] * (2 * len(defects)) + defects))

    def build_selection(self, defect: str | None, data: st.DataObject) -> list[int]:
        """A selection of eligible clients; defects: all four (too many), an unknown index,
        an excluded client (the selection is a bitmap: its order cannot be wrong)."""
        pool = self.eligible()
        selected = (
            data.draw(st.lists(st.sampled_from(pool), unique=True, max_size=CPR)) if pool else []
        )
        if defect == "all":
            selected = list(range(N))
        elif defect == "unknown":
            selected = [*selected[: CPR - 1], data.draw(st.sampled_from([N, 300]))]
        elif defect == "excluded" and self.excluded:
            selected = [*selected[: CPR - 1], data.draw(st.sampled_from(sorted(self.excluded)))]
        return selected

    def build_post(
        self, rnd: int, defect: str | None, data: st.DataObject, *, random_signatures: bool
    ) -> list[Entry]:
        """Selected clients without a commitment, ascending; defects: an empty batch (which
        the contract admits), an already committed, repeated, unselected or unknown client,
        the wrong order, a zero sample count. Signatures: the clients' own, or random (some
        not the client's: admitted, and fraud-provable)."""
        r = self.round_of(rnd)
        pending = sorted(r.selected - set(r.committed)) if r is not None else []
        clients = (
            sorted(data.draw(st.sets(st.sampled_from(pending), min_size=1))) if pending else []
        )
        if defect == "empty":
            clients = []
        elif defect == "committed" and r is not None and r.committed:
            clients = sorted({*clients, data.draw(st.sampled_from(r.committed))})
        elif defect == "repeat" and clients:
            k = data.draw(st.integers(0, len(clients) - 1))
            clients = [*clients[: k + 1], *clients[k:]]
        elif defect == "unsorted" and len(clients) > 1:
            clients = clients[::-1]
        elif defect == "unselected":
            others = [i for i in range(N) if r is None or i not in r.selected]
            if others:
                clients = sorted({*clients, data.draw(st.sampled_from(others))})
        elif defect == "unknown":
            clients = [*clients, data.draw(st.sampled_from([N, 300]))]
        samples = [data.draw(st.sampled_from([5, 5, 1, 2**64 - 1])) for _ in clients]
        if defect == "zero" and clients:
            samples[data.draw(st.integers(0, len(clients) - 1))] = 0
        modes = [data.draw(SIG_MODE) if random_signatures else "good" for _ in clients]
        return [
            self.make_entry(rnd, i, n, m) for i, n, m in zip(clients, samples, modes, strict=True)
        ]

    def build_members(self, defect: str | None, data: st.DataObject) -> list[int]:
        """min(committee size, eligible) eligible clients; defects: one fewer, one more (if
        that is a new one), an unknown or an excluded client, none."""
        pool = self.eligible()
        size = min(COMMITTEE, len(pool))
        chosen = sorted(data.draw(st.permutations(pool))[:size]) if pool else []
        if defect == "fewer":
            chosen = chosen[:-1]
        elif defect == "more":
            chosen = sorted({*chosen, data.draw(st.sampled_from(range(N)))})
        elif defect == "unknown":
            chosen = [*chosen[1:], data.draw(st.sampled_from([N, 300]))]
        elif defect == "excluded" and self.excluded:
            chosen = [*chosen[1:], data.draw(st.sampled_from(sorted(self.excluded)))]
        elif defect == "nobody":
            chosen = []
        return chosen

    def build_votes(
        self, rnd: int, defect: str | None, data: st.DataObject
    ) -> tuple[list[VoteSpec], bool]:
        """Votes (random accept bits) of members that have not voted; defects: signed by
        another key or over another digest, an accept byte of 2, a non-member's vote, a member
        twice in the batch or again, a ragged packing, no vote at all (admitted)."""
        r = self.round_of(rnd)
        n = len(r.committed) if r is not None else 0
        members = r.members if r is not None and r.members is not None else frozenset()
        pending = sorted(members - r.voted) if r is not None else []

        def accept() -> list[int]:
            return data.draw(st.lists(st.sampled_from([1, 1, 1, 0]), min_size=n, max_size=n))

        chosen = sorted(data.draw(st.sets(st.sampled_from(pending), min_size=1))) if pending else []
        specs = [VoteSpec(m, accept(), "good") for m in chosen]
        if defect in ("other", "stale", "byte") and specs:
            specs[data.draw(st.integers(0, len(specs) - 1))].mode = defect
        elif defect == "nonmember":
            outside = [i for i in range(N + 1) if i not in members]
            specs.append(VoteSpec(data.draw(st.sampled_from(outside)), accept(), "good"))
        elif defect == "twice" and specs:
            specs.append(VoteSpec(specs[0].member, accept(), "good"))
        elif defect == "again" and r is not None and r.voted:
            specs.insert(0, VoteSpec(data.draw(st.sampled_from(sorted(r.voted))), accept(), "good"))
        elif defect == "empty":
            specs = []
        return specs, defect == "ragged"

    def build_finalize(
        self, rnd: int, outcome_defect: str | None, flag_defect: str | None, data: st.DataObject
    ) -> tuple[list[int], list[int]]:
        """One outcome per commitment (0 only for commitments the committee accepted) and an
        ascending subset of the committed clients as flags; outcome defects: an unknown code,
        an unaccepted commitment used, one too few or too many, random codes; flag defects:
        not ascending, an unknown or an uncommitted client."""
        r = self.round_of(rnd)
        committed = list(r.committed) if r is not None else []
        n = len(committed)
        outcomes = [
            data.draw(st.sampled_from([0, 0, 1, 8]))
            if r is not None and self.accepted(r, i)
            else data.draw(st.integers(1, MAX_OUTCOME))
            for i in range(n)
        ]
        unaccepted = [i for i in range(n) if r is not None and not self.accepted(r, i)]
        if outcome_defect == "unknown code" and n:
            outcomes[data.draw(st.integers(0, n - 1))] = data.draw(st.sampled_from([9, 16, 255]))
        elif outcome_defect == "unaccepted" and unaccepted:
            outcomes[data.draw(st.sampled_from(unaccepted))] = 0
        elif outcome_defect == "random":
            outcomes = data.draw(st.lists(st.sampled_from([0, 1, 8, 9]), min_size=n, max_size=n))
        elif outcome_defect in ("short", "long"):
            outcomes = [1] * (n + 1 if outcome_defect == "long" or n == 0 else n - 1)
        flagged = sorted(data.draw(st.sets(st.sampled_from(committed)))) if committed else []
        if flag_defect == "unsorted" and flagged:
            flagged = [*flagged, flagged[0]]
        elif flag_defect == "unknown":
            flagged = [*flagged, data.draw(st.sampled_from([N, 2**32 - 1]))]
        elif flag_defect == "uncommitted":
            others = [i for i in range(N) if i not in committed]
            if others:
                flagged = sorted({*flagged, data.draw(st.sampled_from(others))})
        return outcomes, flagged

    # ------------------------------------------------------------ rules
    def round_open(self) -> bool:
        """The last round is open (halted or not): the rules that act inside a round run."""
        return bool(self.rounds) and self.rounds[-1].status == OPEN

    def posted(self) -> bool:
        return any(r.batches for r in self.rounds)

    def close_window(self, r: RoundModel) -> None:
        """Mine until the round's submission window has closed (if it has not)."""
        if self.block < r.window_end:
            self.do_mine(r.window_end - self.block)

    @precondition(lambda self: self.halted_by is None)
    @rule(data=st.data())
    def advance(self, data: st.DataObject) -> None:
        """One to six steps of the protocol, each the next one the current state calls
        for (open a round, post commitments, let the window close, name the committee, relay
        votes, finalize), by the aggregator, each valid or, one time in four, with one defect.
        Stopping anywhere leaves a round mid-way for the other rules."""
        for _ in range(data.draw(st.integers(1, 6))):
            self.protocol_phase(data, attack=False)

    @precondition(lambda self: self.halted_by is None)
    @rule(data=st.data())
    def attack(self, data: st.DataObject) -> None:
        """The next protocol step with one defect: another sender, the wrong timing (a post
        after the window, a committee or finalization before it closes, opening the next round
        before finalizing), or one of the builders' defects."""
        self.protocol_phase(data, attack=True)

    def protocol_phase(self, data: st.DataObject, *, attack: bool) -> None:
        def pick(defects: list[str]) -> str | None:
            if attack:
                return data.draw(st.sampled_from(defects))
            return data.draw(st.sampled_from([None] * (3 * len(defects)) + defects))

        def sender(d: str | None) -> str:
            return (
                data.draw(st.sampled_from(["admin", "outsider", "c0"]))
                if d == "sender"
                else "aggregator"
            )

        r = self.rounds[-1] if self.rounds else None
        if r is None or r.status != OPEN:
            d = pick(["sender", "round", "base", "all", "unknown", "excluded"])
            base = GLOBALS[1] if d == "base" and self.model_hash != GLOBALS[1] else self.model_hash
            rnd = len(self.rounds) + (1 if d == "round" else 0)
            self.do_open(sender(d), rnd, base, sorted(self.build_selection(d, data)))
            return
        rnd = len(self.rounds) - 1
        pending = sorted(r.selected - set(r.committed))
        if pending and self.block + 1 <= r.window_end:
            if not attack and data.draw(st.integers(0, 2)) == 0:
                # a selected client left out so far records its own commitment
                self.do_submit(f"c{data.draw(st.sampled_from(pending))}", rnd, data.draw(SAMPLES))
                return
            d = pick(
                ["sender", "late", "empty", "committed", "repeat", "unsorted", "unselected"]
                + ["unknown", "zero", "forge"]
            )
            if d == "late":
                self.close_window(r)
            entries = self.build_post(rnd, d, data, random_signatures=False)
            if entries and (d == "forge" or data.draw(st.integers(0, 3)) == 0):
                # one time in four the aggregator forges a signature (admitted; provable)
                k = data.draw(st.integers(0, len(entries) - 1))
                e = entries[k]
                entries[k] = self.make_entry(rnd, e.client, e.samples, data.draw(FORGERY))
            self.do_post(sender(d), rnd, entries, raw=data.draw(st.booleans()))
            return
        window_open = self.block + 1 <= r.window_end
        if attack and window_open and r.committed and data.draw(st.booleans()):
            # everyone posted: the aggregator posts a commitment again
            self.do_post(
                "aggregator", rnd, self.build_post(rnd, "committed", data, random_signatures=False)
            )
            return
        if window_open and not (attack or data.draw(st.integers(0, 3)) == 0):
            self.close_window(r)
            return
        # from here on, with the window open: too early
        if self.committee and r.members is None:
            d = pick(["sender", "fewer", "more", "unknown", "excluded", "nobody"])
            self.do_select(sender(d), rnd, self.build_members(d, data))
            return
        if self.committee and r.members is not None and r.members - r.voted:
            d = pick(["sender", "other", "stale", "byte", "nonmember", "twice", "again", "ragged"])
            specs, ragged = self.build_votes(rnd, d, data)
            self.do_votes(sender(d), rnd, specs, ragged=ragged)
            return
        d = pick(
            ["sender", "unknown code", "unaccepted", "short", "long", "reopen"]
            + ["flags unsorted", "flags unknown", "flags uncommitted"]
        )
        if d == "reopen":  # open the next round before finalizing this one
            self.do_open("aggregator", rnd + 1, self.model_hash, self.build_selection(None, data))
            return
        flag_defect = d[6:] if d is not None and d.startswith("flags ") else None
        outcome_defect = None if flag_defect else d
        outcomes, flagged = self.build_finalize(rnd, outcome_defect, flag_defect, data)
        global_hash = data.draw(st.sampled_from(GLOBALS))
        if data.draw(st.booleans()):  # finalize, and open the next round in the same transaction
            sd = None if d is not None else self.draw_defect(data, ["all", "unknown", "excluded"])
            selected = self.build_selection(sd, data)
            self.do_finalize_and_open(sender(d), rnd, global_hash, outcomes, flagged, selected)
            return
        self.do_finalize(sender(d), rnd, global_hash, outcomes, flagged)

    @precondition(lambda self: not self.round_open())
    @rule(
        sender=SENDER_AGG,
        which=st.sampled_from(["next"] * 6 + ["last", "skip"]),
        base_mode=BASE_MODE,
        data=st.data(),
    )
    def open_round(self, sender: str, which: str, base_mode: str, data: st.DataObject) -> None:
        """Open a round, by anyone, with any round number, base model and selection."""
        n = len(self.rounds)
        rnd = {"next": n, "last": n - 1 if n else n + 1, "skip": n + 1}[which]
        base = {
            "current": self.model_hash,
            "stale": self.previous_hashes[-1] if self.previous_hashes else GLOBALS[0],
            "random": hashlib.sha256(b"no such model").digest(),
        }[base_mode]
        d = self.draw_defect(data, ["all", "unknown", "excluded"])
        self.do_open(sender, rnd, base, self.build_selection(d, data))

    @precondition(round_open)
    @rule(
        op=st.sampled_from(["post", "select", "votes", "finalize", "finalize_open"]),
        sender=SENDER_AGG,
        which=WHICH_ROUND,
        close=st.booleans(),
        data=st.data(),
    )
    def any_time(self, op: str, sender: str, which: str, close: bool, data: st.DataObject) -> None:
        """One aggregator call at any time, into any round, by anyone (after closing the
        window first, if ``close``), with a random defect: a batch with random signatures,
        a committee, votes, or a finalization."""
        rnd = self.pick_round(which)
        if close:
            self.close_window(self.rounds[-1])
        if op == "post":
            d = self.draw_defect(
                data, ["empty", "committed", "repeat", "unsorted", "unselected", "unknown", "zero"]
            )
            entries = self.build_post(rnd, d, data, random_signatures=True)
            self.do_post(sender, rnd, entries, raw=data.draw(st.booleans()))
        elif op == "select":
            d = self.draw_defect(data, ["fewer", "more", "unknown", "excluded", "nobody"])
            self.do_select(sender, rnd, self.build_members(d, data))
        elif op == "votes":
            d = self.draw_defect(
                data, ["other", "stale", "byte", "nonmember", "twice", "again", "ragged", "empty"]
            )
            specs, ragged = self.build_votes(rnd, d, data)
            self.do_votes(sender, rnd, specs, ragged=ragged)
        else:
            d = self.draw_defect(data, ["unknown code", "unaccepted", "random", "short", "long"])
            flag_defect = self.draw_defect(data, ["unsorted", "unknown", "uncommitted"])
            outcomes, flagged = self.build_finalize(rnd, d, flag_defect, data)
            global_hash = data.draw(st.sampled_from(GLOBALS))
            if op == "finalize":
                self.do_finalize(sender, rnd, global_hash, outcomes, flagged)
            else:
                sd = self.draw_defect(data, ["all", "unknown", "excluded"])
                selected = self.build_selection(sd, data)
                self.do_finalize_and_open(sender, rnd, global_hash, outcomes, flagged, selected)

    @precondition(round_open)
    @rule(which=WHICH_ROUND, samples=SAMPLES, data=st.data())
    def submit_commitment(self, which: str, samples: int, data: st.DataObject) -> None:
        """A client records its own commitment: mostly one the round still waits for, else
        anyone (a client not selected or already committed, an outsider, the admin...)."""
        r = self.rounds[-1]
        pending = [f"c{i}" for i in sorted(r.selected - set(r.committed))]
        if pending and data.draw(st.booleans()):
            sender = data.draw(st.sampled_from(pending))
        else:
            sender = data.draw(SENDER_CLIENT)
        self.do_submit(sender, self.pick_round(which), samples)

    @rule(k=st.integers(1, TIMEOUT + 2))
    def mine(self, k: int) -> None:
        """Let blocks pass (windows close, deadlines pass; nothing else depends on time)."""
        self.do_mine(k)

    @precondition(round_open)
    @rule(sender=SENDER_ANY, which=WHICH_ROUND)
    def abort_round(self, sender: str, which: str) -> None:
        """Anyone aborts a round (before or after its deadline)."""
        self.do_abort(sender, self.pick_round(which))

    @precondition(posted)
    @rule(data=st.data())
    def prove_bad_signature(self, data: st.DataObject) -> None:
        """A fraud proof by anyone on a posted entry (mostly a forged one, if any), sometimes
        naming the wrong client, position or batch, or a tampered batch."""
        sender = data.draw(SENDER_ANY)
        forged = data.draw(st.sampled_from([True, True, True, False]))
        mode = data.draw(
            st.sampled_from(["exact"] * 4 + ["wrong client", "position", "tampered", "batch"])
        )
        targets = [
            (e.valid, rnd, b, p)
            for rnd, r in enumerate(self.rounds)
            for b, batch in enumerate(r.batches)
            for p, e in enumerate(batch.entries)
        ]
        if forged and any(not t[0] for t in targets):
            targets = [t for t in targets if not t[0]]
        if not targets:  # only empty batches: there is no position to prove
            rnd, b = next((k, j) for k, r in enumerate(self.rounds) for j in range(len(r.batches)))
            self.do_prove(sender, rnd, b, 0, b"", self.fed.addr(0))
            return
        _, rnd, b, p = data.draw(st.sampled_from(targets))
        packed = self.rounds[rnd].batches[b].packed
        client_index = int.from_bytes(packed[p * PACKED : p * PACKED + 4], "big")
        client = self.client_account(client_index).address
        if mode == "wrong client":
            other = data.draw(st.sampled_from([i for i in range(N + 1) if i != client_index]))
            client = self.client_account(other).address
        elif mode == "position":
            p = len(packed) // PACKED
        elif mode == "tampered":
            packed = packed[:-1] + bytes([packed[-1] ^ 1])
        elif mode == "batch":
            b = len(self.rounds[rnd].batches)
        self.do_prove(sender, rnd, b, p, packed, client)

    # ------------------------------------------------------------ invariants (read the chain)
    @invariant()
    def ledger_matches_model(self) -> None:
        """After every step: the chain against the model (see ``check_ledger``)."""
        TRAMPOLINE(self.check_ledger)

    def check_ledger(self) -> None:
        """After every step. Views and events are functions of the contract's storage and logs,
        which only an accepted transaction changes: after a step of refused calls and mining,
        the chain must show no new event of the contract and the same round count, model and
        halt; after a step with an accepted transaction, everything is compared."""
        chain, c, view = self.fed.chain, self.c, self.views
        assert chain.block_number == self.block
        assert view("roundCount") == len(self.rounds)
        assert view("haltedBy") == (0 if self.halted_by is None else self.halted_by + 1)
        assert view("currentModelHash") == self.model_hash
        new_logs = chain.w3.eth.get_logs(
            {"address": c.address, "fromBlock": self.checked_block + 1, "toBlock": "latest"}
        )
        self.checked_block = self.block
        if not self.dirty:
            assert list(new_logs) == [], "a refused call or an empty block emitted events"
            return
        self.dirty = False
        self.logs.extend(new_logs)
        c.use_logs(self.logs)  # the wrapper's event readers, on the logs since the snapshot

        # rounds strictly in order, at most one open, every field as the model has it
        infos = [view("roundInfo", rnd) for rnd in range(len(self.rounds) + 1)]
        assert infos.pop()[0] == NONE_STATUS  # the next round
        statuses = [int(i[0]) for i in infos]
        assert statuses.count(OPEN) <= 1
        assert all(s in (FINALIZED, ABORTED) for s in statuses[:-1])
        for rnd, (info, r) in enumerate(zip(infos, self.rounds, strict=True)):
            # status, numSelected, numCommitments, committeeSize, numVotes, numBatches,
            # fraudulent, openedAt, windowEnd, baseModelHash, (seed), digest, globalModelHash
            assert info[:10] + info[11:] == (
                r.status,
                len(r.selected),
                len(r.committed),
                len(r.members) if r.members else 0,
                r.num_votes,
                len(r.batches),
                r.fraudulent,
                r.opened_at,
                r.window_end,
                r.base,
                r.digest,
                r.global_hash,
            ), f"round {rnd}"
        if self.committee and self.rounds and self.rounds[-1].tally is not None:
            assert list(view("acceptVotes", len(self.rounds) - 1)) == self.rounds[-1].tally

        # the events: one outcome per commitment, at most one commitment per selected client
        opened = c.rounds_opened()
        commitments = c.commitments()
        finalized = c.rounds_finalized()
        assert sorted(opened) == list(range(len(self.rounds)))
        assert sorted(finalized) == [i for i, r in enumerate(self.rounds) if r.status == FINALIZED]
        assert sorted(c.rounds_aborted()) == [
            i for i, r in enumerate(self.rounds) if r.status == ABORTED
        ]
        for rnd, (info, r) in enumerate(zip(infos, self.rounds, strict=True)):
            recs = commitments.get(rnd, [])
            clients = [c.index_of(x.client) for x in recs]
            assert [x.index for x in recs] == list(range(len(recs))) == list(range(info[2]))
            assert len(set(clients)) == len(clients)
            assert set(clients) <= set(opened[rnd]["selected"]) == r.selected
            assert clients == r.committed
            if rnd in finalized:
                assert len(finalized[rnd]["outcomes"]) == info[2]  # numCommitments
                assert finalized[rnd]["outcomes"] == r.outcomes
        last = max(finalized) if finalized else None
        assert self.model_hash == (finalized[last]["global_model_hash"] if last is not None else H0)

        # reputation: minus the number of distinct rounds flagged in; excluded at MAX_FLAGS
        flag_events = c.flags()
        for rnd, flagged in flag_events.items():
            assert len(set(flagged)) == len(flagged) and flagged == self.rounds[rnd].flagged
        for i, client in enumerate(self.fed.clients):
            rounds_flagged = sum(i in f for f in flag_events.values())
            assert view("flagsOf", client.address) == self.flags[i] == rounds_flagged
            if self.flags[i]:  # reputationOf is -flagsOf by construction; checked once it moved
                assert view("reputationOf", client.address) == -rounds_flagged
            excluded = view("isExcluded", client.address)
            assert excluded == (self.flags[i] >= MAX_FLAGS) == (i in self.excluded)
        assert sorted(i for x in c.exclusions().values() for i in x) == sorted(self.excluded)
        assert view("excludedCount") == len(self.excluded)

        # halted: for good, and nothing but aborts and further fraud marks since
        assert sorted(c.frauds()) == [i for i, r in enumerate(self.rounds) if r.fraudulent]
        if self.halted_by is not None:
            assert c.halted_by() == self.halted_by and self.rounds[self.halted_by].fraudulent
            assert self.freeze() == self.frozen


LedgerMachine.TestCase.settings = MACHINE_SETTINGS
TestStatefulLedger = LedgerMachine.TestCase


def test_snapshot_revert_restores_the_ledger() -> None:
    """What the machine relies on: a revert restores the block number and the contract's
    state, and the cleared caches let the same transactions be sent again."""
    w = world()
    reset(w)
    fed = w.feds["plain"]
    c = fed.contract
    assert fed.chain.block_number == w.block and c.round_count() == 0
    c.open_round(fed.aggregator, round=0, base_model_hash=H0, selected=[0, 1])
    fed.chain.mine_to(fed.chain.block_number + 5)
    assert c.round_count() == 1 and fed.chain.block_number == w.block + 6
    assert len(fed.chain.log) == 1 and len(fed.chain.log.records) == 2  # + the mining marker
    # the machine's direct view calls read what the wrapper's views read
    view = w.views["plain"]
    assert tuple(c.round_info(0).values()) == view("roundInfo", 0)
    assert view("roundCount") == 1 and view("currentModelHash") == c.current_model_hash()
    assert view("flagsOf", fed.addr(0)) == c.flags_of(fed.addr(0)) == 0
    reset(w)
    assert fed.chain.block_number == w.block and c.round_count() == 0
    assert c.round_info(0)["status"] == NONE_STATUS
    assert c.rounds_opened() == {} and fed.chain.log.records == []
    assert c.clients == [x.address for x in fed.clients]
    # the nonce cache was cleared: the aggregator's nonce is the snapshot's again
    c.open_round(fed.aggregator, round=0, base_model_hash=H0, selected=[2])
    assert c.round_count() == 1 and c.rounds_opened()[0]["selected"] == [2]
    reset(w)
    assert c.round_count() == 0 and w.feds["committee"].contract.round_count() == 0
