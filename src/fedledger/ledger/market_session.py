"""A run's task market, driven by the ledger process beside its FedLedger run.

Set-up (before round 0): the requester deploys the reward token and the market and posts the
task with its escrow; every worker (each client, with its own key) receives tokens for its
stake from the requester (a simulation stands in for the workers' own funds), approves and
joins at its declared rate; the aggregator posts its bond; once the join deadline has passed
the requester binds the FedLedger run. Each round's entries are posted once the round is final
on the ledger. At the end the challenge windows pass, every worker claims its rounds and its
stake, the task closes, the bond and the unspent budget are settled and everyone withdraws:
:meth:`MarketSession.settle` returns what each worker was paid, read back from the chain.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from eth_account.signers.local import LocalAccount

from fedledger.errors import LedgerError
from fedledger.ledger.chain import Chain
from fedledger.ledger.market import (
    Entry,
    Phase,
    RewardToken,
    TaskMarketContract,
    Terms,
    merkle_proof,
)


@dataclass(frozen=True)
class MarketPlan:
    """Everything the ledger process needs to run the task (plain data)."""

    budget: int  # base units
    cost_budget: int
    stake: int
    aggregator_bond: int
    cost_rate_cap: int  # base units per unit of work
    max_work_per_round: int
    rounds: int
    epochs: int
    bonus_bps: int
    validator_bps: int
    scoring: int
    join_period: int
    bind_period: int
    round_period: int
    challenge_window: int
    rates: tuple[int, ...]  # each worker's declared rate, base units per unit of work


@dataclass
class WorkerPay:
    """What one worker was paid, by kind, from the chain's events."""

    rounds: int = 0  # score shares + bonuses + reimbursements of claimed rounds
    stake: int = 0  # stake returned (with its part of the slashed stakes)
    slashed: bool = False
    withdrawn: int = 0


@dataclass
class MarketOutcome:
    token: str
    market: str
    task: int
    phase: str
    workers: list[WorkerPay] = field(default_factory=list)
    requester_back: int = 0
    aggregator_back: int = 0
    slashed_total: int = 0


class MarketSession:
    def __init__(
        self,
        chain: Chain,
        *,
        plan: MarketPlan,
        requester: LocalAccount,
        aggregator: LocalAccount,
        workers: list[LocalAccount],
        config_hash: bytes,
    ) -> None:
        self.chain = chain
        self.plan = plan
        self.requester = requester
        self.aggregator = aggregator
        self.workers = workers
        n = len(workers)
        supply = plan.budget + plan.cost_budget + n * plan.stake + plan.aggregator_bond
        self.token = RewardToken.deploy(chain, requester, supply=supply)
        self.market = TaskMarketContract.deploy(chain, requester)
        self.terms = Terms(
            token=self.token.address,
            aggregator=aggregator.address,
            spec_hash=config_hash,
            budget=plan.budget,
            cost_budget=plan.cost_budget,
            stake=plan.stake,
            aggregator_bond=plan.aggregator_bond,
            cost_rate_cap=plan.cost_rate_cap,
            max_work_per_round=plan.max_work_per_round,
            max_workers=n,
            rounds=plan.rounds,
            epochs=plan.epochs,
            bonus_bps=plan.bonus_bps,
            validator_bps=plan.validator_bps,
            scoring=plan.scoring,
            join_deadline=chain.block_number + plan.join_period,
            bind_period=plan.bind_period,
            round_period=plan.round_period,
            challenge_window=plan.challenge_window,
        )
        self.task = self.market.create_task(requester, self.terms, token=self.token)
        for w, rate in zip(workers, plan.rates, strict=True):
            self.token.transfer(requester, w.address, plan.stake)
            self.token.approve(w, self.market.address, plan.stake)
            self.market.join(w, self.task, rate=rate)
        if plan.aggregator_bond:
            self.token.transfer(requester, aggregator.address, plan.aggregator_bond)
            self.token.approve(aggregator, self.market.address, plan.aggregator_bond)
        self.market.post_bond(aggregator, self.task)
        self.entries: dict[int, list[Entry]] = {}
        self.bound_at = 0

    def bind(self, ledger: str) -> None:
        if self.chain.block_number > self.terms.join_deadline:
            raise LedgerError(
                f"the workers' joins took past the join deadline (block {self.terms.join_deadline}):"
                " raise task.join_period"
            )
        self.chain.mine_to(self.terms.join_deadline + 1)
        self.market.bind(self.requester, self.task, ledger)
        self.bound_at = self.chain.block_number

    def post_round(self, round: int, entries: list[tuple[int, int, bool, bool]]) -> None:
        row = [Entry(*e) for e in entries]
        self.market.post_round(self.aggregator, self.task, round, row)
        self.entries[round] = row

    def settle(self) -> MarketOutcome:
        """Close the task and pay everyone (see the module docstring)."""
        m, t = self.market, self.task
        last = max(self.entries) if self.entries else None
        if last is not None:
            posted = int(m.scored_round(t, last)["posted_at"])
            self.chain.mine_to(posted + self.terms.challenge_window + 1)
        trees = {r: m.tree(t, r, e) for r, e in self.entries.items()}
        out = MarketOutcome(token=self.token.address, market=m.address, task=t, phase="")
        for i, w in enumerate(self.workers):
            claims = [
                (r, e[i], merkle_proof(trees[r], i))
                for r, e in sorted(self.entries.items())
                if e[i] != Entry()
            ]
            pay = WorkerPay()
            if claims:
                m.claim(w, t, claims)
                pay.rounds = m.owed(t, w.address)
            out.workers.append(pay)
        if m.task_info(t)["next_round"] == self.terms.rounds:
            m.close(self.requester, t)
        else:
            self.chain.mine_to(self._due() + 1)  # a run that stopped early: the task stalls
            m.stall(self.requester, t)
        for i, (w, pay) in enumerate(zip(self.workers, out.workers, strict=True)):
            m.claim_stake(w, t)
            pay.slashed = m.is_slashed(t, i)
            pay.stake = m.owed(t, w.address) - pay.rounds
            pay.withdrawn = self._withdraw(w)
        m.settle_bond(self.requester, t)
        m.reclaim(self.requester, t)
        out.requester_back = self._withdraw(self.requester)
        out.aggregator_back = self._withdraw(self.aggregator)
        info = m.task_info(t)
        out.phase = Phase(info["phase"]).name.lower()
        out.slashed_total = int(info["slashed_total"])
        return out

    def _due(self) -> int:
        nxt = int(self.market.task_info(self.task)["next_round"])
        return self.bound_at + (nxt + 1) * self.terms.round_period

    def _withdraw(self, account: LocalAccount) -> int:
        owed = self.market.owed(self.task, account.address)
        if owed:
            self.market.withdraw(account, self.task)
        return owed
