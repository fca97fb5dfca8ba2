"""``fedledger audit RUN_DIR``: replay a run's ledger and re-derive everything it claims.

The auditor holds no key and trusts nothing in the run directory: it re-executes the recorded
transactions on a fresh embedded chain (or reads a live node with ``--url``) and checks, one
function per check (fedledger/audit/checks_*.py):

* the deployment: the contract's code is the committed artifact's; the roles are exactly the
  admin and the aggregator of deployment.json; the registrations are its clients; the
  configuration hash and every contract parameter follow from config.toml;
* every round (fedledger.protocol, the same code the aggregator ran): the base model chains;
  the selection and the committee are the seeded draws from the on-chain seed; every selected
  client is accounted for (posted, self-submitted, or absent); every posted commitment carries
  its client's signature; every outcome, rule exclusion, flag and the new global model are
  recomputed from the blob store; committee votes are checked (signatures, tally) and
  re-derived from the members' data;
* the outputs: model.safetensors, summary.json and metrics.csv against the chain and the
  recomputation;
* the task market, when the run has one (checks_market.py): its code, terms and binding;
  every round's entries re-scored from the blob store; every credit, withdrawal and token
  balance against the formulas; payouts.csv against the chain.

A corrupted file is a finding naming the file and the line or item, never a traceback.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomllib
import torch

from fedledger.audit.checks_deployment import LedgerView, check_deployment, read_view
from fedledger.audit.checks_market import DEPLOY_LABELS, check_market
from fedledger.audit.checks_outputs import check_outputs
from fedledger.audit.checks_rounds import replay_rounds
from fedledger.audit.report import AuditReport
from fedledger.config import ExperimentConfig, load_config
from fedledger.determinism import deterministic_torch
from fedledger.errors import AuditError, ConfigError, FedLedgerError, LedgerError, StoreError
from fedledger.ledger.chain import Chain, TxLog, TxRecord
from fedledger.ledger.contract import FedLedgerContract
from fedledger.ledger.deployment import DEPLOYMENT_FILE, TX_FILE, Deployment
from fedledger.ledger.store import BlobStore

AuditProgress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``: ``"transactions"`` (replayed on the embedded chain, or
looked up on the node), then ``"rounds"`` (re-made); called as each one is done."""


@dataclass
class RunInputs:
    run: Path
    cfg: ExperimentConfig
    config_bytes: bytes
    deployment: Deployment
    store: BlobStore


def audit_run(
    run_dir: str | Path, *, url: str | None = None, progress: AuditProgress | None = None
) -> AuditReport:
    """Audit a run directory. Raises AuditError only when there is nothing to audit (no
    config.toml, a run without the ledger); everything else is a finding in the report.

    Parameters
    ----------
    run_dir
        A run directory written by ``fedledger run``.
    url
        Read the ledger from this live JSON-RPC node instead of replaying the embedded chain.
    progress
        Told of each transaction and round done (``fedledger audit``'s progress bar).
    """
    tell: AuditProgress = progress or _silent
    run = Path(run_dir)
    report = AuditReport(run_dir=run)
    inputs = _load_inputs(run, report)
    if inputs is None:
        return report
    torch.set_num_threads(inputs.cfg.threads)
    deterministic_torch()
    try:
        opened = _open_chain(inputs, url, report, tell)
        if opened is None:
            return report
        chain, logs, deployed = opened
        contract = FedLedgerContract(chain, inputs.deployment.contract)
        if logs is not None:
            contract.use_logs(logs)
        try:
            view = read_view(contract)
        except LedgerError as exc:
            report.error("ledger", f"cannot read the ledger at {inputs.deployment.contract}: {exc}")
            return report
        if not check_deployment(view, inputs.cfg, inputs.config_bytes, inputs.deployment, report):
            return report
        replay = replay_rounds(
            view,
            inputs.cfg,
            inputs.deployment,
            inputs.store,
            report,
            progress=lambda done, total: tell("rounds", done, total),
        )
        check_outputs(run, view, replay, inputs.cfg, report)
        if inputs.cfg.task is not None:
            check_market(run, chain, view, replay, inputs.cfg, deployed, report)
    finally:
        inputs.store.close()
    return report


def _load_inputs(run: Path, report: AuditReport) -> RunInputs | None:
    cfg_path = run / "config.toml"
    if not cfg_path.exists():
        raise AuditError(
            f"{run} has no config.toml; is it a run directory written by `fedledger run`?"
        )
    dep_path = run / "ledger" / DEPLOYMENT_FILE
    if not dep_path.exists():
        raise AuditError(
            f"{run} has no {dep_path.relative_to(run)}: the run was made without the ledger"
        )
    config_bytes = cfg_path.read_bytes()
    try:
        tomllib.loads(config_bytes.decode("utf-8"))
        cfg = load_config(cfg_path)
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, ConfigError) as exc:
        report.error("files", f"config.toml cannot be read: {exc}")
        return None
    try:
        dep = Deployment.load(dep_path)
    except LedgerError as exc:
        report.error("files", str(exc))
        return None
    try:
        store = BlobStore(run / "store", readonly=True)
        store.check_readable()
    except StoreError as exc:
        report.error("files", str(exc))
        return None
    return RunInputs(run=run, cfg=cfg, config_bytes=config_bytes, deployment=dep, store=store)


def _silent(stage: str, done: int, total: int) -> None:
    return None


def _open_chain(
    inputs: RunInputs, url: str | None, report: AuditReport, tell: AuditProgress
) -> tuple[Chain, list[Any] | None, dict[str, str]] | None:
    """The run's chain: a live node, or the embedded chain replayed from its genesis (then
    with the replay's logs, so that the events need not be queried again), and the address
    each logged deployment created, by its label."""
    dep = inputs.deployment
    records = _read_log(inputs.run, report)
    if url or not dep.embedded:
        chain = Chain.from_url(url or dep.url)
        if records is not None:
            total = sum(1 for r in records if not r.is_mining)
            for k, rec in enumerate(records):
                if rec.is_mining:
                    continue
                if not _on_node(chain, rec):
                    report.error(
                        "ledger",
                        f"{TX_FILE} line {k + 1}: transaction {rec.tx_hash} ({rec.label!r}, "
                        f"round {rec.round}) is not on the node",
                    )
                report.transactions += 1
                tell("transactions", report.transactions, total)
        on_node: dict[str, str] = {}
        for rec in records or []:
            if rec.label in DEPLOY_LABELS and _on_node(chain, rec):
                got = chain.w3.eth.get_transaction_receipt(rec.tx_hash)  # type: ignore[arg-type]
                on_node[rec.label] = str(got["contractAddress"])
        return chain, None, on_node
    if records is None:
        return None
    if dep.genesis is None:
        report.error("files", f"{DEPLOYMENT_FILE} records an embedded chain without its genesis")
        return None
    try:
        chain = Chain.from_genesis(dep.genesis)
    except (FedLedgerError, KeyError, TypeError, ValueError) as exc:
        report.error("files", f"{DEPLOYMENT_FILE}: the genesis cannot be rebuilt ({exc})")
        return None
    logs: list[Any] = []
    deployed: dict[str, str] = {}
    total = sum(1 for r in records if not r.is_mining)
    try:
        for rec, receipt in chain.replay(records):
            if not rec.is_mining:
                report.transactions += 1
                tell("transactions", report.transactions, total)
            logs += receipt.get("logs", [])
            if rec.label in DEPLOY_LABELS and receipt.get("contractAddress"):
                deployed[rec.label] = str(receipt["contractAddress"])
    except LedgerError as exc:
        report.error("ledger", f"ledger replay: {exc}; the transaction log was altered")
        return None
    return chain, logs, deployed


def _read_log(run: Path, report: AuditReport) -> list[TxRecord] | None:
    """The transaction log. A run that did not finish (no summary.json, itself a finding) may
    end in a line its kill cut short: that line is left out with a warning, the rest audited."""
    path = run / "ledger" / TX_FILE
    unfinished = not (run / "summary.json").exists()
    try:
        records = TxLog.read(path, complete_lines_only=unfinished)
    except LedgerError as exc:
        report.error("files", str(exc))
        return None
    if unfinished and path.read_bytes().rstrip(b"\n") and not path.read_bytes().endswith(b"\n"):
        report.warning(
            "files",
            f"{TX_FILE} ends in a line cut short (the run was interrupted while writing it); "
            "it is left out",
        )
    return records


def _on_node(chain: Chain, rec: TxRecord) -> bool:
    try:
        tx = chain.w3.eth.get_transaction(rec.tx_hash)  # type: ignore[arg-type]
    except Exception:  # web3 raises TransactionNotFound (or a node-specific error)
        return False
    return tx is not None


def config_digest(config_bytes: bytes) -> bytes:
    return hashlib.sha256(config_bytes).digest()


__all__ = ["AuditProgress", "AuditReport", "LedgerView", "audit_run"]
