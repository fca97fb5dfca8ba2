"""The deployment checks: what contract runs at the recorded address, who holds its roles,
whom it registered, and whether its parameters follow from config.toml."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from fedledger.audit.report import AuditReport
from fedledger.config import ExperimentConfig
from fedledger.federation import ledger_params
from fedledger.ledger.contract import (
    CommitmentRecord,
    FedLedgerContract,
    LedgerParams,
    load_artifact,
)
from fedledger.ledger.deployment import DEPLOYMENT_FILE, Deployment
from fedledger.ledger.signing import keccak

ADMIN_ROLE = bytes(32)
AGGREGATOR_ROLE = keccak(text="AGGREGATOR_ROLE")


@dataclass
class LedgerView:
    """Everything the audit reads from the chain, read once."""

    contract: FedLedgerContract
    code: bytes
    created: dict[str, Any] = field(default_factory=dict)
    params: LedgerParams | None = None
    roles: list[tuple[str, bytes, str]] = field(default_factory=list)
    registrations: list[tuple[int, str]] = field(default_factory=list)
    round_count: int = 0
    infos: dict[int, dict[str, Any]] = field(default_factory=dict)
    opened: dict[int, dict[str, Any]] = field(default_factory=dict)
    commitments: dict[int, list[CommitmentRecord]] = field(default_factory=dict)
    committees: dict[int, list[int]] = field(default_factory=dict)
    votes: dict[int, list[tuple[str, bytes, bytes, bytes]]] = field(default_factory=dict)
    flags: dict[int, list[int]] = field(default_factory=dict)
    exclusions: dict[int, list[int]] = field(default_factory=dict)
    finalized: dict[int, dict[str, Any]] = field(default_factory=dict)
    aborted: dict[int, str] = field(default_factory=dict)
    frauds: dict[int, list[tuple[int, int, int]]] = field(default_factory=dict)


def read_view(contract: FedLedgerContract) -> LedgerView:
    """Read the code, the parameters and every event (LedgerError if the node cannot)."""
    code = bytes(contract.chain.w3.eth.get_code(contract.address))
    view = LedgerView(contract=contract, code=code)
    if not code:
        return view
    view.created = contract.ledger_created()
    view.params = contract.params()
    view.roles = contract.role_events()
    view.registrations = contract.registrations()
    view.round_count = contract.round_count()
    view.infos = {r: contract.round_info(r) for r in range(view.round_count)}
    view.opened = contract.rounds_opened()
    view.commitments = contract.commitments()
    view.committees = contract.committees()
    view.votes = contract.votes()
    view.flags = contract.flags()
    view.exclusions = contract.exclusions()
    view.finalized = contract.rounds_finalized()
    view.aborted = contract.rounds_aborted()
    view.frauds = contract.frauds()
    return view


def check_deployment(
    view: LedgerView,
    cfg: ExperimentConfig,
    config_bytes: bytes,
    dep: Deployment,
    report: AuditReport,
) -> bool:
    """All deployment checks; False when the contract is not FedLedger (nothing else can be
    trusted then)."""
    if not check_code(view, report):
        return False
    check_roles(view, dep, report)
    check_registrations(view, dep, report)
    check_parameters(view, cfg, config_bytes, dep, report)
    return True


def check_code(view: LedgerView, report: AuditReport) -> bool:
    """The deployed runtime code is the committed artifact's, up to the immutables' values
    (which check_parameters checks through the contract's own view)."""
    address = view.contract.address
    if not view.code:
        report.error(
            "deployment", f"no contract at {address} ({DEPLOYMENT_FILE} names it): wrong chain?"
        )
        return False
    art = load_artifact()
    expected = bytearray(bytes.fromhex(art["deployedBytecode"].removeprefix("0x")))
    if len(expected) != len(view.code):
        report.error(
            "deployment",
            f"the code at {address} is not FedLedger's ({len(view.code)} bytes, the artifact "
            f"has {len(expected)}): a modified contract",
        )
        return False
    for refs in art.get("immutableReferences", {}).values():
        for ref in refs:
            start, length = int(ref["start"]), int(ref["length"])
            expected[start : start + length] = view.code[start : start + length]
    if bytes(expected) != view.code:
        report.error(
            "deployment",
            f"the code at {address} differs from the artifact (sha256 "
            f"{hashlib.sha256(view.code).hexdigest()[:16]}...): a modified contract",
        )
        return False
    return True


def check_roles(view: LedgerView, dep: Deployment, report: AuditReport) -> None:
    """Exactly one admin (deployment.json's) and one aggregator, never the same account."""
    holders: dict[bytes, set[str]] = {}
    for kind, role, account in view.roles:
        s = holders.setdefault(role, set())
        if kind == "granted":
            s.add(account)
        else:
            s.discard(account)
    expected = {ADMIN_ROLE: {dep.admin}, AGGREGATOR_ROLE: {dep.aggregator}}
    for role, accounts in holders.items():
        name = {ADMIN_ROLE: "admin", AGGREGATOR_ROLE: "aggregator"}.get(role, "0x" + role.hex())
        if accounts != expected.get(role, set()):
            report.error(
                "roles",
                f"the {name} role is held by {sorted(accounts)}, but {DEPLOYMENT_FILE} "
                f"says {sorted(expected.get(role, set()))}",
            )
    for role in expected:
        if role not in holders:
            report.error("roles", f"nobody holds the role 0x{role.hex()[:8]}...")
    if dep.admin == dep.aggregator:
        report.error("roles", "the admin and the aggregator are the same key")


def check_registrations(view: LedgerView, dep: Deployment, report: AuditReport) -> None:
    onchain = [c for _, c in view.registrations]
    if [i for i, _ in view.registrations] != list(range(len(onchain))):
        report.error("registrations", "registration indices are not consecutive")
    if onchain != dep.clients:
        diff = next(
            (i for i, (a, b) in enumerate(zip(onchain, dep.clients, strict=False)) if a != b),
            min(len(onchain), len(dep.clients)),
        )
        report.error(
            "registrations",
            f"the chain registered {len(onchain)} clients, {DEPLOYMENT_FILE} lists "
            f"{len(dep.clients)}; they first differ at index {diff}",
        )
    if len(onchain) != view.contract.client_count():
        report.error("registrations", "clientCount() disagrees with the registrations")


def check_parameters(
    view: LedgerView,
    cfg: ExperimentConfig,
    config_bytes: bytes,
    dep: Deployment,
    report: AuditReport,
) -> None:
    """configHash = SHA-256 of config.toml; every other parameter as the config implies."""
    params = view.params
    assert params is not None
    if params.config_hash != hashlib.sha256(config_bytes).digest():
        report.error(
            "config", "config.toml differs from the configuration hash recorded at deployment"
        )
    if len(dep.clients) != cfg.federation.num_clients:
        report.error(
            "config",
            f"config.toml has {cfg.federation.num_clients} clients, {DEPLOYMENT_FILE} "
            f"{len(dep.clients)}",
        )
    expected = ledger_params(
        cfg, initial_model_hash=params.initial_model_hash, aggregator=dep.aggregator
    )
    for name in expected.__dataclass_fields__:
        if name == "config_hash":
            continue
        got, want = getattr(params, name), getattr(expected, name)
        if got != want:
            report.error(
                "config",
                f"the contract's {name} is {_show(got)}, but config.toml implies {_show(want)}",
            )
    if (
        view.created.get("configHash") is not None
        and bytes(view.created["configHash"]) != params.config_hash
    ):
        report.error("config", "the LedgerCreated event disagrees with the contract's parameters")


def _show(v: object) -> str:
    return "0x" + v.hex() if isinstance(v, bytes) else repr(v)
