"""The task market of a run (``[task]``): code, terms, binding, every round's entries
re-scored, every credit and withdrawal against the contract's formulas, token balances, and
payouts.csv against the chain."""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path
from typing import Any

from fedledger.audit.checks_deployment import LedgerView
from fedledger.audit.checks_rounds import RoundReplay
from fedledger.audit.report import AuditReport
from fedledger.config import ExperimentConfig
from fedledger.incentives.config import TOKEN
from fedledger.incentives.entries import round_entries, scoring_seed
from fedledger.incentives.participation import COLUMNS, crowd_offers
from fedledger.incentives.terms import market_plan, validation_set
from fedledger.ledger.chain import Chain
from fedledger.ledger.contract import load_artifact
from fedledger.ledger.market import (
    Entry,
    Phase,
    RewardToken,
    TaskMarketContract,
    pack_entries,
    unpack_entries,
)

DEPLOY_LABELS = ("deployMarket", "deployToken")
TASK = 0  # a run posts one task on its own market


def check_market(
    run: Path,
    chain: Chain,
    view: LedgerView,
    replay: RoundReplay,
    cfg: ExperimentConfig,
    deployed: dict[str, str],
    report: AuditReport,
) -> None:
    if "deployMarket" not in deployed or "deployToken" not in deployed:
        report.error("market", "config.toml has a [task] but the log deploys no market and token")
        return
    market = TaskMarketContract(chain, deployed["deployMarket"])
    token = RewardToken(chain, deployed["deployToken"])
    code = bytes(chain.w3.eth.get_code(market.address)).hex()
    if code != load_artifact("TaskMarket")["deployedBytecode"].removeprefix("0x"):
        report.error("market", f"the code at {market.address} is not the TaskMarket artifact's")
        return
    if market.task_count() != 1:
        report.error("market", f"the run's market holds {market.task_count()} tasks, not 1")
        return
    info = market.task_info(TASK)
    if info["ledger"] != view.contract.address:
        report.error("market", f"the task is bound to {info['ledger']}, not to this run's ledger")
        return
    events = _events(market)
    assert replay.fed is not None
    plan = market_plan(cfg, replay.fed)
    withdrawn: dict[str, int] = defaultdict(int)
    for e in events["Withdrawn"]:
        withdrawn[e["args"]["account"]] += int(e["args"]["amount"])
    _check_terms(market, plan, events, view, report)
    rows = _check_rounds(cfg, replay, events, report)
    _check_money(market, token, plan, rows, events, withdrawn, view, report)
    _check_payouts_file(run, withdrawn, report)
    _check_participation(run, cfg, report)


def _events(market: TaskMarketContract) -> dict[str, list[Any]]:
    ev = market.contract.events
    names = ("TaskCreated", "WorkerJoined", "RoundScored", "Credited", "Withdrawn", "TaskEnded")
    return {n: list(getattr(ev, n)().get_logs(from_block=0)) for n in names}


def _check_terms(
    market: TaskMarketContract,
    plan: Any,
    events: dict[str, list[Any]],
    view: LedgerView,
    report: AuditReport,
) -> None:
    t = market.contract.functions.termsOf(TASK).call()
    want = {
        "budget": plan.budget,
        "costBudget": plan.cost_budget,
        "stake": plan.stake,
        "aggregatorBond": plan.aggregator_bond,
        "costRateCap": plan.cost_rate_cap,
        "maxWorkPerRound": plan.max_work_per_round,
        "rounds": plan.rounds,
        "epochs": plan.epochs,
        "bonusBps": plan.bonus_bps,
        "validatorBps": plan.validator_bps,
        "scoring": plan.scoring,
        "challengeWindow": plan.challenge_window,
    }
    names = [c["name"] for c in _terms_abi(market)]
    got = dict(zip(names, t, strict=True))
    for k, v in want.items():
        if int(got[k]) != v:
            report.error("market", f"the task's {k} is {got[k]}, but config.toml gives {v}")
    if bytes(got["specHash"]) != bytes(view.params.config_hash if view.params else b""):
        report.error("market", "the task's spec hash is not the run's configuration hash")
    joined = sorted(events["WorkerJoined"], key=lambda e: e["args"]["index"])
    clients = [c for _, c in view.registrations]
    if [e["args"]["worker"] for e in joined] != clients:
        report.error("market", "the workers who joined are not the run's clients in order")
    for e in joined:
        i = int(e["args"]["index"])
        if i < len(plan.rates) and int(e["args"]["rate"]) != plan.rates[i]:
            report.error(
                "market",
                f"worker {i} declared rate {e['args']['rate']}, but its simulated cost gives "
                f"{plan.rates[i]}",
            )


def _terms_abi(market: TaskMarketContract) -> list[dict[str, Any]]:
    fn = next(f for f in market.abi if f.get("name") == "termsOf")
    comps: list[dict[str, Any]] = fn["outputs"][0]["components"]
    return comps


def _check_rounds(
    cfg: ExperimentConfig, replay: RoundReplay, events: dict[str, list[Any]], report: AuditReport
) -> dict[int, list[Entry]]:
    """Every posted round's entries against the re-scored ones; the posted entries."""
    inc = cfg.incentives
    assert inc is not None and replay.fed is not None
    fed = replay.fed
    x_val, y_val = validation_set(cfg, fed)
    posted: dict[int, list[Entry]] = {}
    for e in events["RoundScored"]:
        rnd = int(e["args"]["round"])
        raw = bytes(e["args"]["entries"])
        posted[rnd] = unpack_entries(raw)
        s = replay.scoring.get(rnd)
        if s is None:
            report.error(
                "market", "scores were posted for a round the ledger did not finalize", round=rnd
            )
            continue
        want, _ = round_entries(
            model=fed.model,
            params=s.params,
            used=s.used,
            used_updates=s.used_updates,
            num_samples=s.num_samples,
            order=s.order,
            outcomes=s.outcomes,
            votes=s.votes,
            num_clients=cfg.federation.num_clients,
            epochs=cfg.federation.local_epochs,
            scoring=inc.scoring,
            scale=inc.score_scale,
            seed=scoring_seed(cfg.seed, rnd),
            x_val=x_val,
            y_val=y_val,
        )
        if pack_entries([Entry(*w) for w in want]) != raw:
            bad = next(
                i for i, (w, p) in enumerate(zip(want, posted[rnd], strict=False)) if Entry(*w) != p
            )
            report.error(
                "market",
                f"worker {bad}'s entry is {posted[rnd][bad]}, but re-scoring the round gives "
                f"{Entry(*want[bad])}",
                round=rnd,
            )
    missing = sorted(set(replay.scoring) - set(posted))
    if missing:
        report.error("market", f"finalized rounds {missing} were never scored on the market")
    return posted


def _check_money(
    market: TaskMarketContract,
    token: RewardToken,
    plan: Any,
    posted: dict[int, list[Entry]],
    events: dict[str, list[Any]],
    withdrawn: dict[str, int],
    view: LedgerView,
    report: AuditReport,
) -> None:
    credited: dict[tuple[str, str], int] = defaultdict(int)
    for e in events["Credited"]:
        credited[(e["args"]["account"], bytes(e["args"]["why"]).rstrip(b"\0").decode())] += int(
            e["args"]["amount"]
        )
    info = market.task_info(TASK)
    clients = [c for _, c in view.registrations]
    flagged = {c for rnd_flags in view.flags.values() for c in rnd_flags}
    honest = len(clients) - len(flagged)
    for i, worker in enumerate(clients):
        want = sum(
            market.pay_for(TASK, r, i, row[i]) for r, row in posted.items() if row[i] != Entry()
        )
        got = credited.get((worker, "rounds"), 0)
        if got != want:
            report.error(
                "market", f"worker {i} was credited {got} for its rounds, the formula gives {want}"
            )
        stake = credited.get((worker, "stake"), 0)
        if info["phase"] == Phase.CLOSED:
            share = int(info["slashed_total"]) // honest if honest and i not in flagged else 0
            want_stake = 0 if i in flagged else plan.stake + share
            if stake != want_stake:
                report.error(
                    "market",
                    f"worker {i} got {stake} back of its stake, but "
                    f"{'it was flagged' if i in flagged else 'it was not flagged'}: {want_stake}",
                )
        if withdrawn.get(worker, 0) > got + stake:
            report.error("market", f"worker {i} withdrew more than it was credited")
    total_credited = sum(credited.values())
    if total_credited != int(info["credited"]) or total_credited > int(info["deposited"]):
        report.error("market", "the credits do not add up to the task's accounting")
    held = token.balance_of(market.address)
    if held != int(info["deposited"]) - sum(withdrawn.values()):
        report.error(
            "market",
            f"the market holds {held} tokens, but deposits minus withdrawals are "
            f"{int(info['deposited']) - sum(withdrawn.values())}",
        )


def _check_payouts_file(run: Path, withdrawn: dict[str, int], report: AuditReport) -> None:
    path = run / "payouts.csv"
    if not path.exists():
        report.error("outputs", "payouts.csv is missing")
        return
    try:
        rows = list(csv.DictReader(path.read_text(encoding="utf-8").splitlines()))
        for k, row in enumerate(rows):
            address = row["address"]
            chain_value = withdrawn.get(address, 0) / TOKEN
            if abs(float(row["withdrawn"]) - chain_value) > 1e-9 * max(1.0, chain_value):
                report.error(
                    "outputs",
                    f"payouts.csv line {k + 2}: worker {row['worker']} withdrew "
                    f"{chain_value} on-chain, the file says {row['withdrawn']}",
                )
    except (KeyError, ValueError, UnicodeDecodeError) as exc:
        report.error("outputs", f"payouts.csv cannot be read: {exc}")


def _check_participation(run: Path, cfg: ExperimentConfig, report: AuditReport) -> None:
    """With rational participation: the members are the workers whose decision, re-derived
    from the crowd's data sizes and costs and the terms, was to join; participation.csv says
    the same."""
    inc, fed = cfg.incentives, cfg.federation
    if inc is None or inc.participation != "rational":
        return
    if fed.members is None:
        report.error("market", "participation is 'rational' but config.toml lists no members")
        return
    offers = crowd_offers(cfg)
    want = [o.worker for o in offers if o.joined]
    if want != fed.members:
        extra = sorted(set(fed.members) - set(want))
        missing = sorted(set(want) - set(fed.members))
        report.error(
            "market",
            f"the members are not the workers the terms attract: {extra} would not have "
            f"joined, {missing} would have",
        )
    path = run / "participation.csv"
    if not path.exists():
        report.error("outputs", "participation.csv is missing")
        return
    try:
        rows = list(csv.DictReader(path.read_text(encoding="utf-8").splitlines()))
        if len(rows) != len(offers) or any(set(r) != set(COLUMNS) for r in rows):
            raise ValueError(f"expected {len(offers)} rows with columns {', '.join(COLUMNS)}")
        for k, (row, o) in enumerate(zip(rows, offers, strict=True)):
            if int(row["worker"]) != o.worker or bool(int(row["joined"])) != o.joined:
                report.error(
                    "outputs",
                    f"participation.csv line {k + 2}: worker {row['worker']} "
                    f"joined={row['joined']}, but its decision on the terms is "
                    f"{int(o.joined)}",
                )
    except (KeyError, ValueError, UnicodeDecodeError) as exc:
        report.error("outputs", f"participation.csv cannot be read: {exc}")
