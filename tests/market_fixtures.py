"""A task market on the embedded chain beside a small FedLedger run, for the market's tests.
Keys are seed-derived: simulated."""

from __future__ import annotations

from dataclasses import dataclass, field

from eth_account.signers.local import LocalAccount
from ledger_fixtures import Fed, make_fed

from fedledger.ledger.market import Entry, RewardToken, TaskMarketContract, Terms, merkle_proof

SUPPLY = 10**27
STAKE = 10**18
BOND = 5 * 10**18


@dataclass
class Market:
    fed: Fed
    token: RewardToken
    market: TaskMarketContract
    terms: Terms
    task: int
    entries: dict[int, list[Entry]] = field(default_factory=dict)  # per posted round

    @property
    def requester(self) -> LocalAccount:
        return self.fed.admin

    @property
    def aggregator(self) -> LocalAccount:
        return self.fed.aggregator

    @property
    def workers(self) -> list[LocalAccount]:
        return self.fed.clients

    def mine(self, blocks: int) -> None:
        self.fed.chain.mine_to(self.fed.chain.block_number + blocks)

    def ledger_round(
        self, committed: list[int], *, flagged: list[int] | None = None, samples: int = 5
    ) -> None:
        """One finalized round on the ledger, with commitments by ``committed``."""
        f = self.fed
        f.open(list(range(len(f.clients))))
        if committed:
            f.post(committed, samples=samples)
        f.close_window()
        n = len(committed)
        f.finalize(outcomes=[0] * n, flagged=flagged or [])

    def post(self, round: int, entries: list[Entry]) -> None:
        self.market.post_round(self.aggregator, self.task, round, entries)
        self.entries[round] = entries

    def proof(self, round: int, worker: int) -> list[bytes]:
        return merkle_proof(self.market.tree(self.task, round, self.entries[round]), worker)

    def claim(self, worker: int, rounds: list[int]) -> None:
        claims = [(r, self.entries[r][worker], self.proof(r, worker)) for r in rounds]
        self.market.claim(self.workers[worker], self.task, claims)

    def finish_window(self) -> None:
        self.mine(self.terms.challenge_window + 1)


def make_terms(fed: Fed, token: RewardToken, **over: int) -> Terms:
    base: dict[str, object] = {
        "token": token.address,
        "aggregator": fed.aggregator.address,
        "spec_hash": fed.contract.config_hash(),
        "budget": 3_000 * 10**18,
        "cost_budget": 600 * 10**18,
        "stake": STAKE,
        "aggregator_bond": BOND,
        "cost_rate_cap": 10**16,
        "max_work_per_round": 10_000,
        "max_workers": len(fed.clients),
        "rounds": 3,
        "epochs": 2,
        "bonus_bps": 1_000,
        "validator_bps": 0,
        "scoring": 1,
        "join_deadline": fed.chain.block_number + 40 + 4 * len(fed.clients),
        "bind_period": 20,
        "round_period": 40,
        "challenge_window": 3,
    }
    base.update(over)
    return Terms(**base)  # type: ignore[arg-type]


def make_market(
    *, num_workers: int = 4, rates: list[int] | None = None, bind: bool = True, **terms: int
) -> Market:
    """A FedLedger run of ``num_workers`` clients, a token, a market, a task they all joined
    (worker i = client i), the aggregator's bond, and (``bind``) the run bound to the task."""
    fed = make_fed(num_clients=num_workers)
    token = RewardToken.deploy(fed.chain, fed.admin, supply=SUPPLY)
    market = TaskMarketContract.deploy(fed.chain, fed.admin)
    t = make_terms(fed, token, **terms)
    task = market.create_task(fed.admin, t, token=token)
    for acct in [*fed.clients, fed.aggregator]:
        token.transfer(fed.admin, acct.address, 100 * STAKE)
    for i, w in enumerate(fed.clients):
        token.approve(w, market.address, t.stake)
        market.join(w, task, rate=(rates or [10**15] * num_workers)[i])
    token.approve(fed.aggregator, market.address, t.aggregator_bond)
    market.post_bond(fed.aggregator, task)
    m = Market(fed=fed, token=token, market=market, terms=t, task=task)
    if bind:
        fed.chain.mine_to(t.join_deadline + 1)
        market.bind(fed.admin, task, fed.contract.address)
    return m
