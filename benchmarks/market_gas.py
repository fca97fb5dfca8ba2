"""Gas of the whole incentive layer for N workers x R rounds on the embedded chain, beside
BlockFLow's published cost at the same N and R.

One task on the TaskMarket, driven by the run's own driver (``MarketSession``): the requester
escrows, N workers stake and join, the aggregator posts its bond, the FedLedger run of those N
clients is bound; each of R rounds is recorded on the ledger (every worker commits) and then
scored on the market; every worker claims all its rounds in one transaction, the task closes,
stakes come back, everyone withdraws. Only the
market's and the token's transactions count (the FedLedger run is what the market pays for,
priced in benchmarks/ledger_overhead.py). BlockFLow (Mugunthan et al. 2022) reports gas per
agent 31913*N + 542045*R + 477050*N*R; per agent and round that is divided by R.

    .venv/bin/python benchmarks/market_gas.py [--workers 100] [--rounds 30]

Ends with ``gas_per_worker_round=X``.
"""

from __future__ import annotations

import argparse
import hashlib
import random
from collections import defaultdict

from fedledger.ledger.chain import ETHER, Chain
from fedledger.ledger.contract import FedLedgerContract, LedgerParams
from fedledger.ledger.keys import derive_account
from fedledger.ledger.market_session import MarketPlan, MarketSession
from fedledger.ledger.signing import Commitment, SignedCommitment, sign_commitment

MARKET_LABELS = {
    "createTask", "join", "postBond", "bind", "postRound", "claim", "close",
    "claimStake", "settleBond", "reclaim", "withdraw",
}  # fmt: skip


def blockflow_per_worker_round(n: int, r: int) -> float:
    return (31913 * n + 542045 * r + 477050 * n * r) / r


def run(n: int, rounds: int, seed: int = 0) -> dict[str, int]:
    rng = random.Random(seed)
    admin = derive_account(seed=seed, role="deployer")
    agg = derive_account(seed=seed, role="aggregator")
    workers = [derive_account(seed=seed, role="client", index=i) for i in range(n)]
    chain = Chain.embedded_chain(funded=[admin.address, agg.address])
    used: dict[str, int] = defaultdict(int)
    send = chain.send

    def counted(account, tx, *, gas: int, label: str, round=None):  # noqa: ANN001, ANN202
        receipt = send(account, tx, gas=gas, label=label, round=round)
        if label in MARKET_LABELS:
            used[label] += int(receipt["gasUsed"])
        return receipt

    chain.send = counted  # type: ignore[method-assign]
    for w in workers:
        chain.send(admin, {"to": w.address, "value": ETHER, "data": b""}, gas=21_000, label="fund")
    config = hashlib.sha256(b"market gas benchmark").digest()
    model = hashlib.sha256(b"initial").digest()
    params = LedgerParams(
        config_hash=config,
        initial_model_hash=model,
        selection_salt=bytes(32),
        aggregator=agg.address,
        clients_per_round=n,
        committee_size=0,
        max_flags=0,
        submission_window=1,
        round_timeout=50,
    )
    ledger = FedLedgerContract.deploy(chain, admin=admin, params=params)
    ledger.register_clients(admin, [w.address for w in workers])
    plan = MarketPlan(
        budget=1_000_000 * 10**18,
        cost_budget=100_000 * 10**18,
        stake=10**18,
        aggregator_bond=10 * 10**18,
        cost_rate_cap=10**16,
        max_work_per_round=10**6,
        rounds=rounds,
        epochs=1,
        bonus_bps=1_000,
        validator_bps=500,
        scoring=1,
        join_period=3 * n + 20,
        bind_period=n + 50,
        round_period=2_000,
        challenge_window=5,
        rates=tuple(rng.randrange(0, 10**16) for _ in range(n)),
    )
    # the run's own driver: set-up and binding, one post per round, close and payouts
    market = MarketSession(
        chain, plan=plan, requester=admin, aggregator=agg, workers=workers, config_hash=config
    )
    market.bind(ledger.address)
    for rnd in range(rounds):
        signed = []
        for i, w in enumerate(workers):
            c = Commitment(rnd, model, hashlib.sha256(f"{rnd} {i}".encode()).digest(), 10 + i)
            s = sign_commitment(c, account=w, domain=ledger.domain)
            signed.append(SignedCommitment(commitment=c, client=w.address, r=s.r, vs=s.vs))
        ledger.open_round(
            agg, round=rnd, base_model_hash=model, selected=list(range(n)), signed=signed
        )
        chain.mine_to(int(ledger.round_info(rnd)["window_end"]))
        new = hashlib.sha256(f"model {rnd}".encode()).digest()
        ledger.finalize_round(agg, round=rnd, global_model_hash=new, outcomes=[0] * n, flagged=[])
        model = new
        # three bonus winners and a committee of five whose votes agreed with the outcome
        entries = [(rng.randrange(1, 1000), 10 + i, i < 3, 3 <= i < 8) for i in range(n)]
        market.post_round(rnd, entries)
    outcome = market.settle()
    if outcome.phase != "closed":
        raise SystemExit(f"the task ended {outcome.phase}, not closed: no comparison")
    return dict(used)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=30)
    args = ap.parse_args()
    n, r = args.workers, args.rounds
    used = run(n, r)
    total = sum(used.values())
    print(f"workers={n} rounds={r}: gas of the market's transactions")
    print(f"{'transaction':>12}{'gas':>14}{'per worker-round':>18}")
    for label in sorted(used, key=used.__getitem__, reverse=True):
        print(f"{label:>12}{used[label]:>14,}{used[label] / (n * r):>18,.0f}")
    ours = total / (n * r)
    theirs = blockflow_per_worker_round(n, r)
    print(f"{'total':>12}{total:>14,}{ours:>18,.0f}")
    print(f"BlockFLow at N={n}, R={r}: {theirs:,.0f} gas per worker-round ({theirs / ours:,.0f}x)")
    print(f"gas_per_worker_round={ours:.0f}")


if __name__ == "__main__":
    main()
