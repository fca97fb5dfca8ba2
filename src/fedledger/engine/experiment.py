"""The experiment loop: one BCFL round after another (the simulation engine).

Round protocol (docs/architecture.md): select -> each client trains from the global model ->
the aggregator checks every update, rejects malformed ones with a reason, runs the rule ->
the round goes to the ledger process, which stores each update blob (safetensors, named by
SHA-256), signs the clients' EIP-712 commitments and records the round on the chain (open,
commitments, left-out clients' own submissions, finalize) while later rounds train ->
evaluation, metrics row, progress line. With ``ledger.enabled = false`` the identical training
runs without chain, store or signatures.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import torch

from fedledger.attacks import detection_counts, precision_recall_f1
from fedledger.client import evaluate
from fedledger.config import ExperimentConfig
from fedledger.data import label_histogram
from fedledger.engine.ledger_process import LedgerProcess, RoundRecord
from fedledger.engine.outputs import RunOutputs
from fedledger.engine.rounds import (
    AggregatorRound,
    ClientRound,
    Hooks,
    aggregator_round,
    clients_round,
)
from fedledger.federation import Federation, build_federation
from fedledger.ledger.store import sha256_hex
from fedledger.protocol.blobs import model_blob, update_blob
from fedledger.protocol.network import NetworkAnnotator, choose_clients

log = logging.getLogger("fedledger")


def run_experiment(
    cfg: ExperimentConfig,
    *,
    out: Path,
    hooks: Hooks | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run ``cfg`` and write RUN_DIR ``out``; returns the summary dict (also summary.json)."""
    if cfg.asynchronous is not None:
        from fedledger.engine.asynchronous import run_async_experiment

        return run_async_experiment(cfg, out=out, progress=progress)
    hooks = hooks or Hooks()
    torch.set_num_threads(cfg.threads)
    torch.use_deterministic_algorithms(True)
    t_start = time.perf_counter()
    fed_cfg = cfg.federation
    fed = build_federation(cfg)
    network = NetworkAnnotator(cfg, fed) if cfg.network is not None else None
    params = fed.initial_params
    adv = fed.adversary

    outputs = RunOutputs(out, cfg)
    outputs.write_clients(
        label_histogram(fed.data.y_train, fed.parts, num_classes=fed.data.num_classes)
    )

    session: LedgerProcess | None = None
    blob = model_blob(params)
    global_hash = sha256_hex(blob)
    if cfg.ledger.enabled:  # starts at once; deploys while the first rounds train
        session = LedgerProcess(cfg, run_dir=out, initial_model_blob=blob)

    acc = loss = float("nan")
    asr: float | None = None
    det = [0, 0, 0]  # detection tp, fp, fn over all rounds
    flag_counts = [0] * fed_cfg.num_clients  # mirrors the on-chain reputation
    # the ledger work of round r runs in the ledger process while later rounds train;
    # rows are written once their round is on-chain
    pending: list[tuple[dict[str, Any], dict[int, str]]] = []

    def flush(*, all_rounds: bool) -> None:
        while pending and (all_rounds or session is None or session.backlog_full):
            row, rejected = pending.pop(0)
            if session is not None:
                row["tx_count"], row["gas_used"] = session.wait()
            outputs.add_round(row, rejected)

    try:
        with outputs.progress(enabled=progress, total=fed_cfg.rounds) as bar:
            for rnd in range(fed_cfg.rounds):
                t_round = time.perf_counter()
                selected = choose_clients(cfg, rnd, flag_counts, network)
                participants, net_row = (
                    network.time_round(rnd, selected) if network else (selected, {})
                )
                base_hash = global_hash
                cr = clients_round(fed, rnd, participants, params, hooks=hooks)
                ar = aggregator_round(
                    fed, rnd, participants, params, cr, hooks=hooks, selected=selected
                )
                for c in ar.flagged:
                    flag_counts[c] += 1
                if ar.aggregate is not None:
                    params = params + ar.aggregate
                    if adv is not None:
                        adv.previous_update = ar.aggregate
                blob = model_blob(params)
                global_hash = sha256_hex(blob)
                if session is not None:
                    submit_round(
                        session,
                        fed=fed,
                        rnd=rnd,
                        base_model_hash=base_hash,
                        selected=selected,
                        clients=cr,
                        agg=ar,
                        model_blob=blob,
                    )
                acc, loss = evaluate(fed.model, params, fed.data.x_test, fed.data.y_test)
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
                    "num_used": len(ar.used),
                    "num_rejected": len(ar.rejected),
                    "num_flagged": len(ar.flagged),
                    **net_row,
                }
                if adv is not None:
                    # flagged = excluded by the rule or rejected; ground truth = active attackers
                    bad = {c for c in selected if adv.active(rnd, c)}
                    tp, fp, fn = detection_counts(set(ar.flagged), bad, set(selected))
                    det = [det[0] + tp, det[1] + fp, det[2] + fn]
                    row["detection_f1"] = precision_recall_f1(tp, fp, fn)[2]
                    asr = adv.success_rate(fed.model, params, fed.data.x_test, fed.data.y_test)
                    row["attack_success_rate"] = asr if asr is not None else float("nan")
                pending.append((row, ar.rejected))
                flush(all_rounds=False)  # a bounded number of rounds in flight
                bar.advance(rnd, acc=acc, loss=loss)
            flush(all_rounds=True)
    finally:
        if session:
            session.close()

    summary: dict[str, Any] = {
        "name": cfg.name,
        "final_accuracy": acc,
        "final_loss": loss,
        "rounds": fed_cfg.rounds,
        "wall_s": time.perf_counter() - t_start,
        "global_model_hash": global_hash,
        "num_params": fed.dim,
        "ledger": {
            "enabled": bool(session),
            "tx_count": session.tx_count if session else 0,
            "gas_used": session.gas_used if session else 0,
            "contract": session.info["contract"] if session else None,
            "chain_id": session.info["chain_id"] if session else None,
            "embedded": session.info["embedded"] if session else None,
        },
    }
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
    outputs.finish(summary, model_blob=blob)
    return summary


def submit_round(
    session: LedgerProcess,
    *,
    fed: Federation,
    rnd: int,
    base_model_hash: str,
    selected: list[int],
    clients: ClientRound,
    agg: AggregatorRound,
    model_blob: bytes,
) -> None:
    """Hand the round to the ledger process: float32 vectors of the model's size as dense
    rows, any other update as its blob bytes (the client committed to what it sent)."""
    dense: list[torch.Tensor] = []
    rows: list[int] = []
    blobs: dict[int, bytes] = {}
    for i, cid in enumerate(agg.order):
        u = clients.updates[cid]
        if isinstance(u, torch.Tensor) and u.dtype == torch.float32 and u.shape == (fed.dim,):
            rows.append(len(dense))
            dense.append(u)
        else:
            rows.append(-1)
            blobs[i] = u if isinstance(u, bytes) else update_blob(u)
    record = RoundRecord(
        round=rnd,
        dim=fed.dim,
        base_model_hash=bytes.fromhex(base_model_hash),
        selected=selected,
        order=agg.order,
        dropped=agg.dropped,
        num_samples=[clients.num_samples[c] for c in agg.order],
        dense_rows=rows,
        blobs=blobs,
        outcomes=agg.outcomes,
        flagged=agg.flagged,
        model_blob=model_blob,
        committee=agg.committee,
        votes=agg.votes,
    )
    session.submit(record, dense=dense)
