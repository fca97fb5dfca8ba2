"""The output checks: what the run directory claims (model.safetensors, summary.json,
metrics.csv) against the chain and the audit's own recomputation."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from pathlib import Path
from typing import Any

from fedledger.audit.checks_deployment import LedgerView
from fedledger.audit.checks_rounds import RoundReplay
from fedledger.audit.report import AuditReport
from fedledger.client.local import FEDERATED_METRICS
from fedledger.config import ExperimentConfig
from fedledger.errors import LedgerError
from fedledger.ledger.chain import TxLog
from fedledger.ledger.deployment import TX_FILE

REL_TOL = 1e-6  # recomputed metrics: the same code on the same data, up to BLAS rounding


def check_outputs(
    run: Path, view: LedgerView, replay: RoundReplay, cfg: ExperimentConfig, report: AuditReport
) -> None:
    check_model_file(run, replay, report)
    per_round = _ledger_per_round(run)
    check_summary(run, view, replay, cfg, per_round, report)
    check_metrics(run, view, replay, per_round, report)
    if replay.privacy is not None:
        check_privacy(run, replay, report)


def check_model_file(run: Path, replay: RoundReplay, report: AuditReport) -> None:
    path = run / "model.safetensors"
    if not path.exists():
        report.error("outputs", "model.safetensors is missing: the run did not finish")
        return
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if replay.final_hash is not None and digest != replay.final_hash:
        report.error(
            "outputs",
            f"model.safetensors hashes to {digest[:16]}..., but the last global model on the "
            f"ledger is {replay.final_hash[:16]}...",
        )


def _ledger_per_round(run: Path) -> dict[int | None, tuple[int, int]]:
    """(transactions, gas) per round label from the (replayed, hence verified) log."""
    out: dict[int | None, tuple[int, int]] = {}
    try:
        records = TxLog.read(run / "ledger" / TX_FILE)
    except LedgerError:
        return out
    for rec in records:
        if rec.is_mining:
            continue
        tx, gas = out.get(rec.round, (0, 0))
        out[rec.round] = (tx + 1, gas + rec.gas_used)
    return out


def check_summary(
    run: Path,
    view: LedgerView,
    replay: RoundReplay,
    cfg: ExperimentConfig,
    per_round: dict[int | None, tuple[int, int]],
    report: AuditReport,
) -> None:
    path = run / "summary.json"
    if not path.exists():
        report.error("outputs", "summary.json is missing: the run did not finish")
        return
    try:
        summary: dict[str, Any] = json.loads(path.read_bytes().decode("utf-8"))
        ledger = summary["ledger"]
        claims = {
            "global_model_hash": summary["global_model_hash"],
            "rounds": summary["rounds"],
            "ledger.contract": ledger["contract"],
            "ledger.chain_id": ledger["chain_id"],
            "ledger.tx_count": ledger["tx_count"],
            "ledger.gas_used": ledger["gas_used"],
        }
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        report.error("outputs", f"summary.json is not a run summary ({exc!r})")
        return
    rounds = cfg.federation.rounds if replay.privacy is None else replay.privacy.rounds
    truth = {
        "global_model_hash": replay.final_hash,
        "rounds": rounds,
        "ledger.contract": view.contract.address,
        "ledger.chain_id": view.contract.chain.chain_id,
        "ledger.tx_count": sum(tx for tx, _ in per_round.values()),
        "ledger.gas_used": sum(gas for _, gas in per_round.values()),
    }
    for key, want in truth.items():
        if claims[key] != want:
            report.error(
                "outputs", f"summary.json says {key} = {claims[key]!r}, the ledger {want!r}"
            )
    if replay.finalized_rounds != rounds:
        budget = "" if rounds == cfg.federation.rounds else " within privacy.max_epsilon"
        report.error(
            "outputs",
            f"config.toml asks for {rounds} rounds{budget}, the ledger finalized "
            f"{replay.finalized_rounds}",
        )
    last = replay.metrics.get(max(replay.metrics)) if replay.metrics else None
    if last is not None and not _close(summary.get("final_accuracy"), last["accuracy"]):
        report.error(
            "outputs",
            f"summary.json says final_accuracy = {summary.get('final_accuracy')}, the "
            f"recomputed final model scores {last['accuracy']}",
        )
    for key in FEDERATED_METRICS:  # [evaluation]: the evaluating clients' scores
        if last is not None and key in last and not _close(summary.get(f"final_{key}"), last[key]):
            report.error(
                "outputs",
                f"summary.json says final_{key} = {summary.get(f'final_{key}')}, the "
                f"recomputed final model on the evaluating clients' data gives {last[key]}",
            )


def check_metrics(
    run: Path,
    view: LedgerView,
    replay: RoundReplay,
    per_round: dict[int | None, tuple[int, int]],
    report: AuditReport,
) -> None:
    path = run / "metrics.csv"
    if not path.exists():
        report.error("outputs", "metrics.csv is missing")
        return
    try:
        rows = list(csv.DictReader(io.StringIO(path.read_bytes().decode("utf-8"))))
    except (UnicodeDecodeError, csv.Error) as exc:
        report.error("outputs", f"metrics.csv cannot be read ({exc})")
        return
    if len(rows) != len(replay.metrics):
        report.error(
            "metrics",
            f"metrics.csv has {len(rows)} rows, the ledger {len(replay.metrics)} finalized rounds",
        )
    want_keys = {k for m in replay.metrics.values() for k in m}
    for line, row in enumerate(rows, 2):
        try:
            rnd = int(row["round"])
            scored = ("accuracy", "loss", *(k for k in FEDERATED_METRICS if k in want_keys))
            got = {k: float(row[k]) for k in scored}
            counts = {
                k: int(row[k])
                for k in (
                    "num_selected",
                    "num_used",
                    "num_rejected",
                    "num_flagged",
                    "num_absent",
                    "tx_count",
                    "gas_used",
                )
            }
        except (KeyError, TypeError, ValueError) as exc:
            report.error("metrics", f"metrics.csv line {line} is not a metrics row ({exc!r})")
            continue
        want = replay.metrics.get(rnd)
        if want is None:
            report.error(
                "metrics",
                f"metrics.csv line {line} names a round the ledger did not finalize",
                round=rnd,
            )
            continue
        for key in scored:
            if key in want and not _close(got[key], want[key]):
                report.error(
                    "metrics",
                    f"metrics.csv line {line}: {key} {got[key]}, but the recomputed model gives {want[key]}",
                    round=rnd,
                )
        outcomes = view.finalized[rnd]["outcomes"]
        selected = view.opened[rnd]["selected"]
        truth = {
            "num_selected": len(selected),
            "num_used": sum(1 for o in outcomes if o == 0),
            "num_rejected": sum(1 for o in outcomes if o != 0),
            "num_flagged": len(view.flags.get(rnd, [])),
            "num_absent": len(selected) - len(outcomes),
            "tx_count": per_round.get(rnd, (0, 0))[0],
            "gas_used": per_round.get(rnd, (0, 0))[1],
        }
        for key, value in truth.items():
            if counts[key] != value:
                report.error(
                    "metrics",
                    f"metrics.csv line {line}: {key} {counts[key]}, but the ledger says {value}",
                    round=rnd,
                )


def _close(a: object, b: float) -> bool:
    if not isinstance(a, int | float) or isinstance(a, bool):
        return False
    if math.isnan(float(a)) and math.isnan(b):
        return True
    return math.isclose(float(a), b, rel_tol=REL_TOL, abs_tol=1e-12)


def check_privacy(run: Path, replay: RoundReplay, report: AuditReport) -> None:
    """summary.json's privacy table and metrics.csv's epsilon column against the accountant
    re-run on config.toml's [privacy] (the noise itself is checked round by round)."""
    plan = replay.privacy
    assert plan is not None
    try:
        claimed = json.loads((run / "summary.json").read_bytes().decode("utf-8"))["privacy"]
        rows = list(csv.DictReader(io.StringIO((run / "metrics.csv").read_text("utf-8"))))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        report.error("privacy", f"summary.json has no privacy table ({exc!r})")
        return
    truth = plan.summary()
    for key in ("epsilon", "delta", "noise_multiplier", "accountant", "clip_norm", "rounds"):
        got, want = claimed.get(key) if isinstance(claimed, dict) else None, truth[key]
        same = got == want if isinstance(want, str) or want is None else _close(got, float(want))
        if not same:
            report.error(
                "privacy",
                f"summary.json says privacy.{key} = {got!r}, the accountant on config.toml's "
                f"[privacy] gives {want!r}",
            )
    for line, row in enumerate(rows, 2):
        try:
            rnd, eps = int(row["round"]), float(row["epsilon"])
        except (KeyError, TypeError, ValueError) as exc:
            report.error("privacy", f"metrics.csv line {line} has no epsilon ({exc!r})")
            continue
        if 0 <= rnd < plan.planned_rounds and not _close(eps, plan.epsilon_after(rnd)):
            report.error(
                "privacy",
                f"metrics.csv line {line}: epsilon {eps}, but the accountant gives "
                f"{plan.epsilon_after(rnd)} after round {rnd}",
                round=rnd,
            )
