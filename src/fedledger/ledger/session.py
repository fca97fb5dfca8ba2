"""A run's ledger, played by its parties in protocol order.

:class:`LedgerSession` starts the chain (embedded, or a node by URL), has the admin deploy the
contract and register the clients, and then records each round as the parties would:

1. the aggregator opens the round (selected clients, base model) and posts the commitments it
   received (signed by the clients, in ascending client order) in the same transaction;
2. (with more commitments than one block holds, further batches follow);
3. every client reads the posted batch: one whose commitment is missing submits its own; one
   that finds a commitment in its name that it did not sign proves it (``proveBadSignature``);
4. the submission window passes (``submission_window`` blocks);
5. with a committee: the aggregator names it, each member signs its vote over the round's
   final commitments digest read from the chain, and the aggregator relays the votes;
6. the aggregator finalizes (global model, one outcome per commitment, flags): in the same
   transaction that opens the next round (``finalizeAndOpen``), or alone when no round
   follows (:meth:`LedgerSession.finish`).

Each party acts through its own agent holding only its own key: :class:`AggregatorAgent` and
:class:`ClientAgent`. The session itself holds the admin's key (deployment, registration and
funding clients' gas).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address

from fedledger.errors import LedgerError
from fedledger.ledger.chain import ETHER, Chain, TxLog, TxRecord
from fedledger.ledger.contract import (
    OPEN,
    CommitmentRecord,
    FedLedgerContract,
    LedgerParams,
    pack_records,
)
from fedledger.ledger.deployment import DEPLOYMENT_FILE, TX_FILE, Deployment, contract_address
from fedledger.ledger.embedded import EMBEDDED_CHAIN_ID
from fedledger.ledger.keys import PartyKeys
from fedledger.ledger.market_session import MarketOutcome, MarketPlan, MarketSession
from fedledger.ledger.signing import SignedCommitment, SignedVote, domain_separator, sign_vote

__all__ = [
    "DEPLOYMENT_FILE",
    "TX_FILE",
    "LedgerSession",
    "ResumePoint",
    "RoundPlan",
    "planned_domain",
    "resumable_prefix",
]


@dataclass(frozen=True)
class RoundPlan:
    """Everything the parties decided in a round, to be written to the ledger."""

    round: int
    base_model_hash: bytes
    selected: list[int]  # registration indices, ascending
    batch: list[SignedCommitment]  # what the aggregator posts, ascending client order
    left_out: list[tuple[int, SignedCommitment]]  # clients it did not post; they submit their own
    order: list[int]  # clients in on-chain commitment order = aggregation order
    outcomes: list[int]  # per commitment in that order: 0 used, else a rejection code
    flagged: list[int]  # registration indices, ascending
    global_model_hash: bytes
    committee: list[int] = field(default_factory=list)
    votes: list[list[int]] = field(default_factory=list)  # per member, per commitment (0/1)
    own: dict[int, SignedCommitment] = field(default_factory=dict)  # what each client signed
    # the task market's entries for the round, one per client: (score, work, bonus)
    entries: list[tuple[int, int, bool, bool]] | None = None


@dataclass(frozen=True)
class ResumePoint:
    """Where an interrupted run goes on (:mod:`fedledger.engine.checkpoint`): round ``round``
    was decided (and its row written) but the transaction that finalizes it, which also opens
    the next round, is sent again by the resumed run."""

    round: int
    outcomes: list[int]
    flagged: list[int]
    global_model_hash: bytes


FINALIZE_LABELS = ("finalizeAndOpen", "finalizeRound")


def resumable_prefix(records: Sequence[TxRecord], after: int) -> list[TxRecord]:
    """The transactions of a run up to round ``after``'s finalization (excluded): the set-up,
    every earlier round, and round ``after`` until it was finalized."""
    out = []
    for rec in records:
        later = rec.round is not None and rec.round > after
        if later or (rec.round == after and rec.label in FINALIZE_LABELS):
            break
        out.append(rec)
    return out


def planned_domain(*, admin: str, nonce: int) -> tuple[str, bytes]:
    """(contract address, EIP-712 domain) of an embedded-chain deployment by ``admin`` at
    ``nonce``: known before the chain exists, so that clients can sign round 0 while the
    ledger process is still deploying."""
    address = contract_address(admin, nonce)
    return address, domain_separator(chain_id=EMBEDDED_CHAIN_ID, contract=address)


class AggregatorAgent:
    """The aggregator's transactions; it holds the aggregator's key and nobody else's."""

    def __init__(self, contract: FedLedgerContract, account: LocalAccount) -> None:
        self.contract = contract
        self.account = account

    def open_round(self, plan: RoundPlan) -> list[CommitmentRecord]:
        """Open the round and post the commitments it received, in one transaction."""
        return self.contract.open_round(
            self.account,
            round=plan.round,
            base_model_hash=plan.base_model_hash,
            selected=plan.selected,
            signed=plan.batch,
        )

    def select_committee(self, round: int, members: Sequence[int]) -> None:
        self.contract.select_committee(self.account, round=round, members=members)

    def relay_votes(self, round: int, votes: Sequence[SignedVote]) -> None:
        self.contract.post_votes(self.account, round=round, votes=votes)

    def finalize_and_open(self, done: RoundPlan, plan: RoundPlan) -> list[CommitmentRecord]:
        """Finalize ``done`` and open ``plan``'s round with its commitments, in one transaction."""
        return self.contract.finalize_and_open(
            self.account,
            round=done.round,
            global_model_hash=done.global_model_hash,
            outcomes=done.outcomes,
            flagged=done.flagged,
            selected=plan.selected,
            signed=plan.batch,
        )

    def finalize(self, plan: RoundPlan) -> None:
        self.contract.finalize_round(
            self.account,
            round=plan.round,
            global_model_hash=plan.global_model_hash,
            outcomes=plan.outcomes,
            flagged=plan.flagged,
        )


class ClientAgent:
    """One client's view of the chain and its own transactions, with its own key."""

    def __init__(self, contract: FedLedgerContract, account: LocalAccount, index: int) -> None:
        self.contract = contract
        self.account = account
        self.index = index

    def signed_it(self, rec: CommitmentRecord, own: SignedCommitment | None) -> bool:
        """Whether the posted commitment ``rec`` in this client's name is exactly what it signed."""
        return own is not None and (rec.update_hash, rec.num_samples, rec.r, rec.vs) == (
            own.commitment.update_hash,
            own.commitment.num_samples,
            own.r,
            own.vs,
        )

    def prove_forgery(self, rec: CommitmentRecord, posted: Sequence[CommitmentRecord]) -> None:
        """Make the contract check the forged entry's signature (it halts the ledger)."""
        batch = [p for p in posted if p.batch == rec.batch]
        self.contract.prove_bad_signature(
            self.account,
            round=rec.round,
            batch=rec.batch,
            position=rec.position,
            packed=pack_records(batch, {c: i for i, c in enumerate(self.contract.clients)}),
            client=self.account.address,
        )

    def submit(self, signed: SignedCommitment) -> CommitmentRecord:
        c = signed.commitment
        return self.contract.submit_commitment(
            self.account, round=c.round, update_hash=c.update_hash, num_samples=c.num_samples
        )

    def vote(self, round: int, accept: list[int]) -> SignedVote:
        """Sign a vote over the round's final commitments digest, as read from the chain."""
        digest = self.contract.round_info(round)["commitments_digest"]
        return sign_vote(
            round=round,
            commitments_digest=digest,
            accept=bytes(accept),
            account=self.account,
            domain=self.contract.domain,
        )


class LedgerSession:
    """Deploys the run's contract and records its rounds (see the module docstring)."""

    def __init__(
        self,
        *,
        keys: PartyKeys,
        params: LedgerParams,
        url: str,
        ledger_dir: Path,
        deploy_nonce: int | None = None,
        market: MarketPlan | None = None,
        resume: ResumePoint | None = None,
    ) -> None:
        """``deploy_nonce``: the admin's starting nonce on a fresh embedded chain (random when
        None), which makes the contract address unique to the run. ``market``: run a task
        market for the run (set up and bound before round 0, see
        :mod:`fedledger.ledger.market_session`). ``resume``: go on with the interrupted run in
        ``ledger_dir`` (embedded chain only): its chain is replayed from the genesis up to the
        resume point, and round ``resume.round`` waits for its finalization."""
        self.keys = keys
        self.admin = keys.admin
        self.params = params
        self._funded: set[str] = set()
        ledger_dir.mkdir(parents=True, exist_ok=True)
        if resume is not None:
            self.chain, self.contract, self.deployment = self._replayed(ledger_dir, resume)
            self._funded = {
                a
                for a in keys.client_addresses
                if self.chain.w3.eth.get_balance(to_checksum_address(a)) > 0
            }
        else:
            operators = [keys.admin.address, keys.aggregator.address]
            if url:
                self.chain = Chain.from_url(url, fund=operators)
            else:
                nonce = secrets.randbits(40) if deploy_nonce is None else deploy_nonce
                self.chain = Chain.embedded_chain(
                    funded=operators, nonces={keys.admin.address: nonce}
                )
            self.chain.log = TxLog(ledger_dir / TX_FILE)
            self.contract = FedLedgerContract.deploy(self.chain, admin=keys.admin, params=params)
            self.contract.register_clients(keys.admin, keys.client_addresses)
            self.deployment = Deployment(
                contract=self.contract.address,
                chain_id=self.chain.chain_id,
                embedded=self.chain.embedded,
                url=url,
                genesis=self.chain.genesis,
                admin=keys.admin.address,
                aggregator=keys.aggregator.address,
                clients=keys.client_addresses,
                keys=keys.kind,
            )
            self.deployment.save(ledger_dir / DEPLOYMENT_FILE)
        self.aggregator = AggregatorAgent(self.contract, keys.aggregator)
        self.clients = [ClientAgent(self.contract, a, i) for i, a in enumerate(keys.clients)]
        self._index: dict[str, int] = {a.address: i for i, a in enumerate(keys.clients)}
        self.market: MarketSession | None = None
        if market is not None:
            for i in range(len(keys.clients)):  # gas for their joins
                self._fund(i, round=None)
            self.market = MarketSession(
                self.chain,
                plan=market,
                requester=keys.admin,
                aggregator=keys.aggregator,
                workers=list(keys.clients),
                config_hash=params.config_hash,
            )
            self.market.bind(self.contract.address)
        self._pending: RoundPlan | None = None  # recorded up to its finalization
        self._pending_counts = (0, 0)  # its transactions and gas so far
        self.completed: list[tuple[int, int]] = []  # (transactions, gas) of rounds now final
        if resume is not None:  # the resumed round waits for its finalization
            self._pending = RoundPlan(
                round=resume.round,
                base_model_hash=b"",
                selected=[],
                batch=[],
                left_out=[],
                order=[],
                outcomes=list(resume.outcomes),
                flagged=list(resume.flagged),
                global_model_hash=resume.global_model_hash,
            )

    def _replayed(
        self, ledger_dir: Path, resume: ResumePoint
    ) -> tuple[Chain, FedLedgerContract, Deployment]:
        dep = Deployment.load(ledger_dir / DEPLOYMENT_FILE)
        if not dep.embedded or dep.genesis is None:
            raise LedgerError(
                "only a run on the embedded chain can be resumed (a node keeps the interrupted "
                "round's transactions): run it again with --overwrite"
            )
        if dep.admin != self.admin.address or dep.clients != self.keys.client_addresses:
            raise LedgerError(
                f"{ledger_dir / DEPLOYMENT_FILE} names other parties than this run's keys"
            )
        path = ledger_dir / TX_FILE
        prefix = resumable_prefix(TxLog.read(path, complete_lines_only=True), resume.round)
        chain = Chain.from_genesis(dep.genesis)
        for _ in chain.replay(prefix):
            pass
        chain.log = TxLog.continued(path, prefix)
        contract = FedLedgerContract(chain, dep.contract)
        info = contract.round_info(resume.round)
        if int(info["status"]) != OPEN:
            raise LedgerError(
                f"the replayed chain does not hold round {resume.round} open "
                f"(status {info['status']}): the transaction log and the checkpoint disagree"
            )
        return chain, contract, dep

    def record_round(self, plan: RoundPlan) -> None:
        """One round's ledger work, in protocol order, up to its finalization, which waits for
        the next round: :meth:`finalizeAndOpen <FedLedgerContract.finalize_and_open>` finalizes
        this round and opens the next in one transaction (or :meth:`finish`, when no round
        follows). Each round's (transactions, gas) goes to :attr:`completed`, in round order,
        once it is final.

        The on-chain order of the commitments must be the order the aggregator aggregated in
        (``plan.order``), or the audit could not recompute the round."""
        start = self._counts()
        for cid, _ in plan.left_out:  # gas for their own submissions, before the window opens
            self._fund(cid, round=plan.round)
        previous, self._pending = self._pending, None
        merged = (0, 0)  # the transaction that finalizes the previous round is that round's
        if previous is not None:  # one transaction finalizes the previous round, opens this one
            before = self._counts()
            records = self.aggregator.finalize_and_open(previous, plan)
            self._score(previous)
            merged = _minus(self._counts(), before)
            self._complete(previous, extra=merged)
        else:
            records = self.aggregator.open_round(plan)
        self._after_open(plan, records)
        self._pending = plan
        self._pending_counts = _minus(_minus(self._counts(), start), merged)

    def finish(self) -> None:
        """Finalize the round that waits for a next one, if any (no round follows)."""
        if self._pending is not None:
            plan, self._pending = self._pending, None
            before = self._counts()
            self.aggregator.finalize(plan)
            self._score(plan)
            self._complete(plan, extra=_minus(self._counts(), before))

    def _score(self, plan: RoundPlan) -> None:
        """Post a finalized round's entries on the task market."""
        if self.market is not None and plan.entries is not None:
            self.market.post_round(plan.round, plan.entries)

    def settle_market(self) -> MarketOutcome | None:
        """Close the task and pay everyone (after the last round is final)."""
        return self.market.settle() if self.market is not None else None

    def _complete(self, plan: RoundPlan, *, extra: tuple[int, int]) -> None:
        tx, gas = self._pending_counts
        self.completed.append((tx + extra[0], gas + extra[1]))

    def _counts(self) -> tuple[int, int]:
        return self.tx_count, self.gas_used

    def _after_open(self, plan: RoundPlan, records: list[CommitmentRecord]) -> None:
        rnd = plan.round
        last = self.chain.block_number
        own: dict[str, SignedCommitment] = {
            self.keys.clients[c].address: s for c, s in plan.own.items()
        }
        by_client = {r.client: r for r in records}
        for rec in records:  # every client in the batch checks its entry
            agent = self.clients[self._index[rec.client]]
            if not agent.signed_it(rec, own.get(rec.client)):
                self._fund(agent.index, round=rnd)
                agent.prove_forgery(rec, records)
                raise LedgerError(
                    f"round {rnd}: client {agent.index} found a commitment in its name that it "
                    "did not sign; it proved the forgery on-chain and the ledger is halted"
                )
        for cid, signed in plan.left_out:  # on the embedded chain each one takes a block
            if self.clients[cid].account.address not in by_client:
                records.append(self.clients[cid].submit(signed))
        actual = [self._index[r.client] for r in records]
        if actual != plan.order:
            raise LedgerError(
                f"round {rnd}: commitments were recorded in the order {actual}, "
                f"but the aggregator aggregated in the order {plan.order}"
            )
        self.chain.mine_to(last + self.params.submission_window, round=rnd)
        if plan.committee:
            self.aggregator.select_committee(rnd, plan.committee)
            votes = [
                self.clients[m].vote(rnd, v)
                for m, v in zip(plan.committee, plan.votes, strict=True)
            ]
            self.aggregator.relay_votes(rnd, votes)

    def current_model_hash(self) -> bytes:
        return self.contract.current_model_hash()

    def _fund(self, client: int, *, round: int | None) -> None:
        """The requester pays a client's gas for its own submission."""
        address = self.keys.clients[client].address
        if address in self._funded:
            return
        self.chain.send(
            self.admin,
            {"to": address, "value": ETHER, "data": b""},
            gas=21_000,
            label="fundClient",
            round=round,
        )
        self._funded.add(address)

    @property
    def tx_count(self) -> int:
        return self.chain.log.tx_count

    @property
    def gas_used(self) -> int:
        return self.chain.log.gas_used

    def close(self) -> None:
        self.chain.close()


def _minus(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    return a[0] - b[0], a[1] - b[1]
