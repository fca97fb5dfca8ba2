"""``fedledger audit RUN_DIR``: replay the ledger and re-derive every round from its blobs.

Checks, in order, for each round: the round's base model is the previous global model; the
selection is the seeded sampler's; every commitment comes from a selected, registered client,
once, and (when relayed by the aggregator) carries that client's valid EIP-712 signature; every
used update's blob exists and hashes to its commitment and is well-formed; every rejection is
justified by re-checking the blob; recomputing the aggregation rule over the used updates (in
on-chain order, weighted by the committed sample counts) gives exactly the recorded global-model
hash; the stored global-model blob matches it; the flags match the rule's exclusions.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import torch

from fedledger.aggregation import create_rule
from fedledger.config import load_config
from fedledger.errors import AuditError, LedgerError, StoreError, UpdateRejected
from fedledger.federation import build_federation
from fedledger.ledger.chain import Chain, TxLog
from fedledger.ledger.contract import FedLedgerContract
from fedledger.ledger.session import DEPLOYMENT_FILE, TX_FILE, Deployment
from fedledger.ledger.signing import Commitment, recover_signer
from fedledger.ledger.store import BlobStore, sha256_hex
from fedledger.protocol.blobs import MODEL_KEY, model_blob
from fedledger.protocol.committee import accepted, select_committee, tally
from fedledger.protocol.network import NetworkAnnotator, choose_clients
from fedledger.protocol.outcomes import RejectReason
from fedledger.protocol.rulectx import ROOT_DATA_RULES, RuleContext
from fedledger.protocol.validation import load_update, reason_code

MAX_PROBLEMS = 20


@dataclass
class AuditReport:
    run_dir: Path
    rounds: int = 0
    commitments: int = 0
    transactions: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def describe(self) -> str:
        head = (
            f"audited {self.run_dir}: {self.rounds} rounds, {self.commitments} commitments, "
            f"{self.transactions} transactions replayed"
        )
        if self.ok:
            return (
                f"{head}\nOK: every signature, blob and aggregation is consistent with the ledger"
            )
        lines = [
            head,
            f"FAILED: {len(self.problems)} inconsistency(ies); first:",
            f"  {self.problems[0]}",
        ]
        lines += [f"  also: {p}" for p in self.problems[1:]]
        return "\n".join(lines)


def audit_run(run_dir: str | Path, *, url: str | None = None) -> AuditReport:
    run = Path(run_dir)
    if not (run / "config.toml").exists():
        raise AuditError(
            f"{run} has no config.toml; is it a run directory written by `fedledger run`?"
        )
    dep_path = run / "ledger" / DEPLOYMENT_FILE
    if not dep_path.exists():
        raise AuditError(
            f"{run} has no {dep_path.relative_to(run)}: the run was made without the ledger"
        )
    cfg = load_config(run / "config.toml")
    dep = Deployment.load(dep_path)
    try:
        store = BlobStore(run / "store", readonly=True)
    except StoreError as exc:
        raise AuditError(str(exc)) from exc
    report = AuditReport(run_dir=run)
    torch.set_num_threads(cfg.threads)
    torch.use_deterministic_algorithms(True)

    # ---- the ledger: replay the embedded chain, or read a live node
    if url or not dep.embedded:
        chain = Chain.from_url(url or dep.url)
    else:
        if dep.genesis is None:
            raise AuditError(f"{dep_path} records an embedded chain without its genesis")
        chain = Chain.from_genesis(dep.genesis)
        records = TxLog.read(run / "ledger" / TX_FILE)
        try:
            for _ in chain.replay(records):
                report.transactions += 1
        except LedgerError as exc:
            report.problems.append(f"ledger replay: {exc}; the transaction log was altered")
            return report
    contract = FedLedgerContract(chain, dep.contract)

    def problem(msg: str) -> bool:
        report.problems.append(msg)
        return len(report.problems) >= MAX_PROBLEMS

    config_digest = hashlib.sha256((run / "config.toml").read_bytes()).digest()
    if contract.config_hash() != config_digest:
        problem("config.toml differs from the configuration hash recorded at deployment")
    created = contract.ledger_created()
    prev_hash = bytes(created["initialModelHash"]).hex()
    try:
        params = store.get_tensors(prev_hash)[MODEL_KEY]
    except (StoreError, KeyError) as exc:
        problem(f"initial model: {exc}")
        return report

    per_round = cfg.federation.per_round
    network = None
    if cfg.aggregation.name in ROOT_DATA_RULES or cfg.network is not None:
        # the server's root data and the device population are part of the experiment
        fed = build_federation(cfg)
        rule_ctx = RuleContext(
            cfg, model=fed.model, x_train=fed.data.x_train, y_train=fed.data.y_train
        )
        network = NetworkAnnotator(cfg, fed) if cfg.network is not None else None
    else:
        rule_ctx = RuleContext(cfg)
    rule = create_rule(cfg.aggregation.name, cfg.aggregation.params(), num_clients=per_round)
    opened = contract.rounds_opened()
    finalized = contract.rounds_finalized()
    commitments = contract.commitments()
    flags = contract.flags()
    registered = {a: i for i, a in enumerate(dep.clients)}
    committees = contract.committees()
    votes = contract.votes()
    com = cfg.committee_enabled
    flag_counts = [0] * cfg.federation.num_clients
    dim = params.numel()

    for rnd in range(contract.round_count()):
        report.rounds += 1
        where = f"round {rnd}"
        if rnd not in finalized:
            if problem(f"{where}: opened but never finalized"):
                return report
            break
        info, fin = opened[rnd], finalized[rnd]
        if info["base_model_hash"].hex() != prev_hash:
            problem(
                f"{where}: trained from model {info['base_model_hash'].hex()[:16]}..., "
                f"but the previous global model is {prev_hash[:16]}..."
            )
        chosen = choose_clients(cfg, rnd, flag_counts, network)
        expected = [dep.clients[i] for i in chosen]
        if info["selected"] != expected:
            problem(f"{where}: the selected clients differ from the seeded sampler's choice")
        recs = commitments.get(rnd, [])
        outcomes = fin["outcomes"]
        if len(outcomes) != len(recs):
            problem(f"{where}: {len(recs)} commitments but {len(outcomes)} outcomes")
            return report
        rejected_here = {
            registered.get(c.client, -1) for c, o in zip(recs, outcomes, strict=False) if o != 0
        }
        accepted_by_committee: list[bool] | None = None
        if com is not None:
            members = select_committee(
                seed=cfg.seed,
                round=rnd,
                num_clients=cfg.federation.num_clients,
                size=com.size,
                trainers=chosen,
            )
            member_addresses = [dep.clients[m] for m in members]
            if committees.get(rnd) != member_addresses:
                problem(f"{where}: the committee differs from the seeded draw")
            round_votes = votes.get(rnd, [])
            if sorted(v[0] for v in round_votes) != sorted(member_addresses):
                problem(f"{where}: not every committee member voted exactly once")
            counts = tally([list(acc) for _, acc in round_votes]) or [0] * len(recs)
            accepted_by_committee = accepted(counts, committee_size=len(members))
        selected = set(info["selected"])
        seen: set[str] = set()
        used: list[torch.Tensor] = []
        weights: list[float] = []
        used_clients: list[int] = []
        for cr, outcome in zip(recs, outcomes, strict=True):
            report.commitments += 1
            who = f"{where}, client {registered.get(cr.client, cr.client)} ({cr.client})"
            if cr.client not in registered or cr.client not in selected:
                problem(f"{who}: committed without being a selected, registered client")
            if cr.client in seen:
                problem(f"{who}: committed twice in the round")
            seen.add(cr.client)
            if cr.relayed:
                c = Commitment(round=rnd, update_hash=cr.update_hash, num_samples=cr.num_samples)
                try:
                    signer = recover_signer(c, r=cr.r, vs=cr.vs, domain=contract.domain)
                except Exception as exc:  # malformed signature bytes
                    signer = f"<invalid signature: {exc}>"
                if signer != cr.client:
                    problem(
                        f"{who}: the commitment's signature is not the client's "
                        f"(forged or altered; it recovers to {signer})"
                    )
            try:
                delta = load_update(
                    store, cr.update_hash.hex(), dim=dim, num_samples=cr.num_samples
                )
                verdict = 0
            except UpdateRejected as exc:
                verdict, detail = reason_code(exc), str(exc)
            if accepted_by_committee is not None:
                ok = (
                    accepted_by_committee[cr.index]
                    if cr.index < len(accepted_by_committee)
                    else False
                )
                if outcome == 0 and not ok:
                    problem(f"{who}: used without a majority of the committee")
                if outcome == RejectReason.COMMITTEE_REJECTED:
                    if ok:
                        problem(
                            f"{who}: rejected as COMMITTEE_REJECTED, but the committee accepted it"
                        )
                    elif verdict == 0:
                        continue
            if outcome == 0:
                if verdict:
                    if problem(
                        f"{who}: update {cr.update_hash.hex()[:16]}... was used but {detail}"
                    ):
                        return report
                    continue
                used.append(delta)
                weights.append(float(cr.num_samples))
                used_clients.append(registered.get(cr.client, -1))
            elif verdict == 0:
                problem(f"{who}: rejected as {_reason(outcome)}, but the update is valid")
            elif verdict != outcome and verdict not in (
                RejectReason.BLOB_MISSING,
                RejectReason.HASH_MISMATCH,
            ):
                problem(
                    f"{who}: rejected as {_reason(outcome)}, but re-checking finds {_reason(verdict)}"
                )

        # ---- recompute the aggregation
        flagged: list[int] = []
        if used:
            result = rule(
                torch.stack(used),
                torch.tensor(weights, dtype=torch.float32),
                ctx=rule_ctx.context(rnd, used_clients, params),
            )
            rule_ctx.update(used_clients, result)
            params = params + result.aggregate
            flagged = [used_clients[i] for i in result.excluded]
        flagged = sorted(set(flagged) | rejected_here)
        recomputed = sha256_hex(model_blob(params))
        recorded = fin["global_model_hash"].hex()
        if recomputed != recorded:
            problem(
                f"{where}: recorded global model hash {recorded[:16]}..., but recomputing "
                f"{cfg.aggregation.name} over the {len(used)} used updates gives {recomputed[:16]}..."
            )
            try:  # go on from the recorded model, so that one bad round is reported once
                params = store.get_tensors(recorded)[MODEL_KEY]
            except (StoreError, KeyError):
                break
        else:
            try:
                store.get_bytes(recorded)
            except StoreError as exc:
                problem(f"{where}: global model blob: {exc}")
        onchain_flags = sorted(registered.get(a, -1) for a in flags.get(rnd, []))
        if onchain_flags != sorted(flagged):
            problem(
                f"{where}: flagged clients {onchain_flags} on-chain, but the rule excluded or rejected {sorted(flagged)}"
            )
        for flagged_client in onchain_flags:
            if 0 <= flagged_client < len(flag_counts):
                flag_counts[flagged_client] += 1
        prev_hash = recorded
        if len(report.problems) >= MAX_PROBLEMS:
            break
    return report


def _reason(code: int) -> str:
    try:
        return RejectReason(code).name
    except ValueError:
        return f"unknown reason {code}"
