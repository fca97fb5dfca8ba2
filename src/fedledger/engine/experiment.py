"""The experiment loop: one BCFL round after another (the simulation engine).

Round protocol (docs/architecture.md): the round's selection seed is derived from the
previous global model's hash -> the selected clients train from the global model -> each
client's device encodes, hashes and signs its update with its own key (engine/devices.py)
-> the aggregator checks every receipt (signature, blob hash) and every update, lets the
committee vote, runs the rule -> the round goes to the ledger process, which records it on the
chain in protocol order (open, batch, left-out clients' own submissions, submission window,
committee and votes, finalize) while later rounds train -> evaluation, metrics row, progress
line. With ``ledger.enabled = false`` the identical training runs without chain, store,
signatures or receipts, and gives the same global model.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fedledger.aggregation.server_opt import create_server_optimizer
from fedledger.attacks import detection_counts, precision_recall_f1
from fedledger.client import evaluate
from fedledger.client.local import FEDERATED_METRICS, check_backend, federated_evaluate
from fedledger.config import ExperimentConfig
from fedledger.data import label_histogram
from fedledger.determinism import deterministic_torch
from fedledger.engine.checkpoint import RoundState, save_state
from fedledger.engine.devices import Devices
from fedledger.engine.ledger_process import LedgerProcess
from fedledger.engine.market import Scorer, write_payouts
from fedledger.engine.outputs import RoundCallback, RunOutputs
from fedledger.engine.resume import restore, resume_point, snapshot
from fedledger.engine.rounds import Hooks, aggregator_round, clients_round
from fedledger.errors import ConfigError, LedgerError
from fedledger.federation import build_federation, ledger_params
from fedledger.incentives.participation import (
    needs_resolution,
    participation_summary,
    resolve,
    write_offers,
)
from fedledger.incentives.terms import market_plan
from fedledger.ledger.deployment import DEPLOYMENT_FILE, Deployment
from fedledger.ledger.keys import load_keys
from fedledger.ledger.session import ResumePoint, RoundPlan, planned_domain
from fedledger.ledger.signing import domain_separator
from fedledger.ledger.store import sha256_hex
from fedledger.privacy.plan import privacy_plan
from fedledger.protocol.blobs import model_blob
from fedledger.protocol.client import receive_global
from fedledger.protocol.network import NetworkAnnotator, choose_clients
from fedledger.protocol.selection import eligible_clients, seed_int, selection_salt, selection_seed

log = logging.getLogger("fedledger")


RUN_MARKERS = ("config.toml", "summary.json", "metrics.csv")  # what every run directory has


def prepare_run_dir(out: Path, *, overwrite: bool) -> None:
    """Make sure ``out`` can take a new run: absent or empty, or (with ``overwrite``) an earlier
    run directory, which is then removed. Anything else is a ConfigError, and nothing is
    touched."""
    if not out.exists():
        above = next((p for p in out.parents if p.exists()), None)  # what mkdir would meet
        if above is not None and not above.is_dir():
            raise ConfigError(f"the run directory {out} cannot be made: {above} is a file")
        return
    if not out.is_dir():
        raise ConfigError(f"the run directory {out} is a file; choose another --out")
    if not any(out.iterdir()):
        return
    is_run = any((out / m).exists() for m in RUN_MARKERS)
    if not overwrite and is_run:
        raise ConfigError(
            f"the run directory {out} already holds an earlier run, and a second one would "
            "mix their records: choose another --out, or pass --overwrite to replace it"
        )
    if not overwrite:
        raise ConfigError(
            f"the run directory {out} already holds files that are not a run; choose another --out"
        )
    if not is_run:
        raise ConfigError(
            f"{out} is not a fedledger run directory (no {', '.join(RUN_MARKERS)}): "
            "--overwrite removes only run directories; choose another --out"
        )
    shutil.rmtree(out)


def run_experiment(
    cfg: ExperimentConfig,
    *,
    out: Path,
    hooks: Hooks | None = None,
    progress: bool = True,
    overwrite: bool = False,
    on_round: RoundCallback | None = None,
    resume: bool = False,
) -> dict[str, Any]:
    """Run ``cfg`` and write RUN_DIR ``out``; returns the summary dict (also summary.json).

    ``out`` must not exist or be empty (a ConfigError otherwise: two runs' records must never
    mix); ``overwrite`` first removes an earlier run written there. ``on_round(row)`` gets
    each metrics row as it is written. ``resume``: go on with the interrupted run of ``cfg``
    in ``out`` (:mod:`fedledger.engine.resume`). (The typed entry point is
    :func:`fedledger.api.run`.)"""
    state = resume_point(out, cfg) if resume else None
    if state is None:  # a run to resume that recorded no round yet starts afresh
        prepare_run_dir(out, overwrite=overwrite or resume)
    offers = None
    if needs_resolution(cfg):  # the crowd decides who joins: the run is theirs
        cfg, offers = resolve(cfg)
    if cfg.asynchronous is not None:
        from fedledger.engine.asynchronous import run_async_experiment

        return run_async_experiment(cfg, out=out, progress=progress, on_round=on_round)
    hooks = hooks or Hooks()
    torch.set_num_threads(cfg.threads)
    deterministic_torch()  # without importing torch._inductor (0.8 s)
    t_start = time.perf_counter()
    fed_cfg = cfg.federation
    fed = build_federation(cfg)
    check_backend(cfg, fed.model)  # a model the vectorised backend cannot train: refused now
    network = NetworkAnnotator(cfg, fed) if cfg.network is not None else None
    params = fed.initial_params
    server = create_server_optimizer(cfg.server, dim=fed.dim)  # x <- x + delta without [server]
    privacy = privacy_plan(cfg)  # [privacy]: z (given or calibrated) and ε after each round
    adv = fed.adversary
    keys = None
    if cfg.ledger.enabled:  # a bad key set-up fails before anything is written
        keys = load_keys(
            cfg.ledger.keys,
            seed=cfg.seed,
            num_clients=fed_cfg.num_clients,
            url=cfg.ledger.url,
            password_file=cfg.ledger.password_file,
        )

    plan = market_plan(cfg, fed) if cfg.task is not None else None
    scorer = Scorer(cfg, fed) if plan is not None else None
    all_entries: list[list[tuple[int, int, bool, bool]]] = []
    outcome: dict[str, Any] | None = None

    det = [0, 0, 0]  # detection tp, fp, fn over all rounds
    flag_counts = [0] * fed_cfg.num_clients  # mirrors the on-chain reputation
    start = 0
    if state is not None:
        params, flag_counts, det = restore(state, fed=fed, adversary=adv, server=server)
        start = state.round + 1
    outputs = RunOutputs(
        out, cfg, on_round=on_round, resume_after=None if state is None else state.round
    )
    if offers is not None:
        write_offers(out / "participation.csv", offers)
    if state is None:
        outputs.write_preprocessing(fed.data)
        outputs.write_clients(
            label_histogram(fed.data.y_train, fed.parts, num_classes=fed.data.num_classes),
            show=progress,
        )

    blob = model_blob(params)
    global_hash = bytes.fromhex(sha256_hex(blob))
    ledger: LedgerProcess | None = None
    devices: Devices | None = None
    planned: str | None = None
    if keys is not None:
        url = cfg.ledger.url
        nonce = None if url or state else secrets.randbits(40)  # a contract unique to the run
        ledger = LedgerProcess(  # starts at once; deploys while the first rounds train
            keys=keys,
            params=ledger_params(
                cfg, initial_model_hash=global_hash, aggregator=keys.aggregator.address
            ),
            url=url,
            ledger_dir=out / "ledger",
            deploy_nonce=nonce,
            max_rounds_ahead=cfg.ledger.max_rounds_ahead,
            market=plan,
            resume=None
            if state is None
            else ResumePoint(state.round, state.outcomes, state.flagged, state.global_model_hash),
        )
        if state is not None:  # the contract the interrupted run deployed
            dep = Deployment.load(out / "ledger" / DEPLOYMENT_FILE)
            domain = domain_separator(chain_id=dep.chain_id, contract=dep.contract)
            if cfg.ledger.max_rounds_ahead == 0:
                ledger.wait()  # lockstep: the resumed round is final before the next trains
        elif url:
            info = ledger.info
            domain = domain_separator(chain_id=info["chain_id"], contract=info["contract"])
        else:
            assert nonce is not None
            planned, domain = planned_domain(admin=keys.admin.address, nonce=nonce)
        devices = Devices(
            clients=keys.clients,
            store_dir=out / "store",
            domain=domain,
            dim=fed.dim,
            tamper=hooks.tamper,
            max_clients=fed_cfg.per_round,
        )
        devices.store_global(blob)

    acc = loss = float("nan")
    fe: tuple[float, float] | None = None  # federated evaluation ([evaluation])
    asr: float | None = None
    if state is not None:  # what the summary says if no round is left to run
        acc, loss = evaluate(fed.model, params, fed.data.x_test, fed.data.y_test)
        fe = federated_evaluate(
            cfg, fed.model, params, fed.client_x, fed.client_y, rnd=state.round
        )
        if adv is not None:
            asr = adv.success_rate(fed.model, params, fed.data.x_test, fed.data.y_test)
    salt = selection_salt(cfg.seed)
    # the ledger work of round r runs in the ledger process while later rounds train;
    # rows are written once their round is on-chain
    pending: list[tuple[dict[str, Any], dict[int, str], RoundState]] = []
    # a round goes to the ledger only once the store has committed its blobs and its global
    # model (the ledger never records a hash the store lacks): as soon as the worker says so
    # (stored_round), or once it has answered a later message (it handles them in order)
    stored: list[RoundPlan] = []

    def submit_stored(*, sync: bool) -> None:
        if stored and ledger is not None and devices is not None:
            if sync:
                devices.sync()
            while stored:
                ledger.submit(stored.pop(0))

    def emit(cid: int, update: Any, num_samples: int) -> None:
        assert devices is not None
        devices.send_update(cid, update, num_samples)
        if stored and devices.stored_round >= stored[0].round:  # the worker is done with it
            submit_stored(sync=False)

    def flush(*, all_rounds: bool) -> None:
        if all_rounds:
            submit_stored(sync=True)
        # (a row whose round is not submitted yet is the last one, and never waited for here:
        # backlog_full means at least one submitted round is in flight)
        while pending and (all_rounds or ledger is None or ledger.backlog_full):
            row, rejected, after = pending.pop(0)
            if ledger is not None:
                row["tx_count"], row["gas_used"] = ledger.wait()
                if planned is not None and ledger.info["contract"] != planned:
                    raise LedgerError(
                        f"the contract was deployed at {ledger.info['contract']}, not at the "
                        f"planned {planned} the clients signed for"
                    )
            outputs.add_round(row, rejected)
            save_state(out, after)  # the run can go on from here (--resume)

    try:
        with outputs.progress(enabled=progress, total=fed_cfg.rounds) as bar:
            for rnd in range(start, fed_cfg.rounds):
                if privacy is not None and not privacy.allows(rnd):  # the pre-round check
                    log.warning("privacy budget: %s", privacy.stop_reason())
                    break
                t_round = time.perf_counter()
                base_hash = global_hash
                if ledger is not None and cfg.ledger.max_rounds_ahead == 0:
                    # lockstep: every client checks the model it trains on against the chain
                    flush(all_rounds=True)
                    receive_global(blob, expected_hash=ledger.current_model_hash())
                seed = seed_int(selection_seed(salt=salt, round=rnd, base_model_hash=base_hash))
                selected = choose_clients(cfg, rnd, flag_counts, network, seed=seed)
                if hooks.select is not None:
                    selected = hooks.select(rnd, selected)
                participants, net_row = (
                    network.time_round(rnd, selected) if network else (selected, {})
                )
                if devices is not None:
                    devices.start_round(rnd, base_hash)
                cr = clients_round(
                    fed,
                    adv,
                    rnd,
                    participants,
                    params,
                    hooks=hooks,
                    emit=emit if devices is not None else None,
                )
                receipts = devices.finish_round() if devices is not None else None
                submit_stored(sync=False)  # the worker has just answered
                ar = aggregator_round(
                    fed,
                    adv,
                    rnd,
                    participants,
                    params,
                    cr,
                    hooks=hooks,
                    selected=selected,
                    receipts=receipts,
                    eligible=eligible_clients(flag_counts, cfg.reputation.max_flags),
                    committee_seed=seed,
                )
                dec = ar.decision
                if privacy is not None:  # DP-FedAvg: the noised mean of the clipped updates
                    privacy.apply(dec, ar.used_updates, rnd=rnd, dim=fed.dim)
                entries = None
                if scorer is not None:  # valued against the model the round started from
                    entries = scorer.entries(rnd, params, ar, cr.num_samples)
                    if hooks.score is not None:
                        entries = hooks.score(rnd, entries)
                    all_entries.append(entries)
                for c in dec.flagged:
                    flag_counts[c] += 1
                if dec.aggregate is not None:
                    params = server.step(params, dec.aggregate)
                    if adv is not None:
                        adv.previous_update = dec.aggregate
                blob = model_blob(params)
                global_hash = bytes.fromhex(sha256_hex(blob))
                if ledger is not None and devices is not None and receipts is not None:
                    devices.store_global(blob)
                    batch = [receipts[c].signed for c in ar.posted]
                    stored.append(
                        RoundPlan(
                            round=rnd,
                            base_model_hash=base_hash,
                            selected=selected,
                            batch=hooks.forge(rnd, batch) if hooks.forge else batch,
                            left_out=[(c, receipts[c].signed) for c in ar.dropped],
                            order=ar.order,
                            outcomes=dec.outcomes,
                            flagged=dec.flagged,
                            global_model_hash=global_hash,
                            committee=ar.committee,
                            votes=ar.votes,
                            own={c: r.sent for c, r in receipts.items()},
                            entries=entries,
                        )
                    )
                acc, loss = evaluate(fed.model, params, fed.data.x_test, fed.data.y_test)
                fe = federated_evaluate(cfg, fed.model, params, fed.client_x, fed.client_y, rnd=rnd)
                row: dict[str, Any] = {
                    "round": rnd,
                    "accuracy": acc,
                    "loss": loss,
                    "train_loss": cr.train_loss,
                    "wall_s": time.perf_counter() - t_start,
                    "round_s": time.perf_counter() - t_round,
                    "tx_count": 0,
                    "gas_used": 0,
                    "num_selected": len(selected),
                    "num_used": len(dec.used),
                    "num_rejected": sum(1 for o in dec.outcomes if o != 0),
                    "num_flagged": len(dec.flagged),
                    "num_absent": len(selected) - len(ar.order),
                    **net_row,
                }
                if fe is not None:
                    row.update(zip(FEDERATED_METRICS, fe, strict=True))
                if privacy is not None:
                    row["epsilon"] = privacy.epsilon_after(rnd)
                if adv is not None:
                    # flagged = excluded by the rule or rejected; ground truth = active attackers
                    bad = {c for c in selected if adv.active(rnd, c)}
                    tp, fp, fn = detection_counts(set(dec.flagged), bad, set(selected))
                    det = [det[0] + tp, det[1] + fp, det[2] + fn]
                    row["detection_f1"] = precision_recall_f1(tp, fp, fn)[2]
                    asr = adv.success_rate(fed.model, params, fed.data.x_test, fed.data.y_test)
                    row["attack_success_rate"] = asr if asr is not None else float("nan")
                after = snapshot(
                    rnd,
                    params=params,
                    global_hash=global_hash,
                    flag_counts=flag_counts,
                    detection=det,
                    decision=dec,
                    adversary=adv,
                    fed=fed,
                    server=server,
                )
                pending.append((row, ar.rejected, after))
                flush(all_rounds=False)  # a bounded number of rounds in flight
                bar.advance(rnd, acc=acc, loss=loss)
            flush(all_rounds=True)
            if plan is not None and ledger is not None:
                outcome = ledger.settle_market()
    finally:
        if devices is not None:
            devices.close()
        if ledger is not None:
            ledger.close()

    summary: dict[str, Any] = {
        "name": cfg.name,
        "final_accuracy": acc,
        "final_loss": loss,
        "rounds": fed_cfg.rounds if privacy is None else privacy.rounds,
        "wall_s": time.perf_counter() - t_start,
        "global_model_hash": global_hash.hex(),
        "num_params": fed.dim,
        "ledger": {
            "enabled": ledger is not None,
            "tx_count": ledger.tx_count if ledger else 0,
            "gas_used": ledger.gas_used if ledger else 0,
            "contract": ledger.info["contract"] if ledger else None,
            "chain_id": ledger.info["chain_id"] if ledger else None,
            "embedded": ledger.info["embedded"] if ledger else None,
            "keys": keys.kind if keys is not None else None,
        },
    }
    if privacy is not None:
        summary["privacy"] = privacy.summary()
    if fe is not None:
        summary.update({f"final_{k}": v for k, v in zip(FEDERATED_METRICS, fe, strict=True)})
    if network is not None:
        summary["simulated_time_s"] = network.elapsed
    if adv is not None:
        p_, r_, f1 = precision_recall_f1(*det)
        summary["attack"] = {
            "name": adv.cfg.name,
            "malicious": sorted(adv.malicious),
            "detection_precision": p_,
            "detection_recall": r_,
        }
        summary["attack_success_rate"] = asr
        summary["detection_f1"] = f1
    if outcome is not None and plan is not None and scorer is not None and keys is not None:
        quality = np.array(
            [
                -1.0 if adv is not None and c in adv.malicious else float(len(y))
                for c, y in enumerate(fed.client_y)
            ]
        )
        summary["market"] = write_payouts(
            out, cfg, outcome, scorer, all_entries, plan, keys.client_addresses, quality
        )
        if offers is not None:
            summary["market"]["participation"] = participation_summary(offers)
    outputs.finish(summary, model_blob=blob)
    return summary
