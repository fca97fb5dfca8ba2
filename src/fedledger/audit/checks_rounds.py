"""The per-round checks: each round re-made from the chain and the blob store with the same
protocol code the aggregator ran (fedledger.protocol)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from fedledger.aggregation.server_opt import ServerOptimizer, create_server_optimizer
from fedledger.audit.checks_deployment import LedgerView
from fedledger.audit.report import AuditReport
from fedledger.client import evaluate
from fedledger.client.local import FEDERATED_METRICS, federated_evaluate
from fedledger.config import ExperimentConfig
from fedledger.errors import StoreError
from fedledger.federation import Federation, build_federation
from fedledger.ledger.contract import (
    FINALIZED,
    OPEN,
    CommitmentRecord,
    digest_after_post,
    digest_after_submit,
    pack_records,
)
from fedledger.ledger.deployment import Deployment
from fedledger.ledger.signing import Commitment, SignedVote, recover_signer, recover_vote_signer
from fedledger.ledger.store import BlobStore, sha256_hex
from fedledger.privacy.plan import PrivacyPlan, privacy_plan
from fedledger.protocol.blobs import MODEL_KEY, model_blob
from fedledger.protocol.committee import accepted, member_vote
from fedledger.protocol.decide import Checked, Received, check_round, decide_round
from fedledger.protocol.network import NetworkAnnotator, choose_clients
from fedledger.protocol.outcomes import USED, RejectReason, outcome_name
from fedledger.protocol.selection import (
    eligible_clients,
    seed_int,
    select_committee,
    selection_salt,
    selection_seed,
)

UNVERIFIABLE = {int(RejectReason.BLOB_MISSING), int(RejectReason.HASH_MISMATCH)}


@dataclass
class RoundReplay:
    """What the audit recomputed, for the output checks."""

    final_hash: str | None = None  # the last finalized global model
    metrics: dict[int, dict[str, float]] = field(default_factory=dict)
    finalized_rounds: int = 0
    # per finalized round, for a task market's scores: the base model, the used clients and
    # their updates, every committed client's sample count, the commitments' clients and
    # recorded outcomes, the committee's votes
    scoring: dict[int, ScoringInputs] = field(default_factory=dict)
    fed: Federation | None = None
    privacy: PrivacyPlan | None = None  # [privacy]: re-made from config.toml


@dataclass
class ScoringInputs:
    params: torch.Tensor
    used: list[int]
    used_updates: list[torch.Tensor]
    num_samples: dict[int, int]
    order: list[int]  # the client of each commitment
    outcomes: list[int]  # each commitment's recorded outcome
    votes: list[tuple[int, list[int]]]  # (member, accept bit per commitment)


@dataclass
class _Ctx:
    view: LedgerView
    cfg: ExperimentConfig
    dep: Deployment
    store: BlobStore
    fed: Federation
    network: NetworkAnnotator | None
    report: AuditReport
    flag_counts: list[int]
    index: dict[str, int]  # registration index by address
    server: ServerOptimizer  # [server]'s optimiser, its state replayed round by round
    privacy: PrivacyPlan | None = None  # [privacy]: the noise of each round, re-made

    def who(self, client: int) -> dict[str, object]:
        address = self.dep.clients[client] if 0 <= client < len(self.dep.clients) else None
        return {"client": client, "address": address}


def replay_rounds(
    view: LedgerView,
    cfg: ExperimentConfig,
    dep: Deployment,
    store: BlobStore,
    report: AuditReport,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> RoundReplay:
    """Re-make every round the contract counts; ``progress(done, total)`` after each."""
    out = RoundReplay()
    params_onchain = view.params
    assert params_onchain is not None
    fed = build_federation(cfg)
    out.fed = fed
    ctx = _Ctx(
        view=view,
        cfg=cfg,
        dep=dep,
        store=store,
        fed=fed,
        network=NetworkAnnotator(cfg, fed) if cfg.network is not None else None,
        report=report,
        flag_counts=[0] * cfg.federation.num_clients,
        index={a: i for i, a in enumerate(dep.clients)},
        server=create_server_optimizer(cfg.server, dim=fed.dim),
        privacy=privacy_plan(cfg),
    )
    out.privacy = ctx.privacy
    prev_hash = params_onchain.initial_model_hash.hex()
    params = _load_model(ctx, prev_hash, where="initial model", round=None)
    if params is None:
        return out
    if not torch.equal(params, fed.initial_params):
        report.error("model", "the initial global model is not the model config.toml initialises")
    salt = selection_salt(cfg.seed)
    for rnd in range(view.round_count):
        if progress is not None and rnd > 0:
            progress(rnd, view.round_count)
        if report.full:
            break
        report.rounds += 1
        if ctx.privacy is not None and not ctx.privacy.allows(rnd):
            report.error(
                "privacy",
                f"the round ran although it takes epsilon to {ctx.privacy.epsilon_after(rnd):.4g}, "
                f"above privacy.max_epsilon = {ctx.privacy.max_epsilon:g}",
                round=rnd,
            )
        info = view.infos[rnd]
        opened = view.opened.get(rnd)
        if opened is None:
            report.error("rounds", "counted by the contract but never opened", round=rnd)
            break
        if opened["base_model_hash"].hex() != prev_hash:
            report.error(
                "rounds",
                f"trained from model {opened['base_model_hash'].hex()[:16]}..., but the "
                f"previous global model is {prev_hash[:16]}...",
                round=rnd,
            )
        seed = selection_seed(salt=salt, round=rnd, base_model_hash=opened["base_model_hash"])
        if opened["selection_seed"] != seed:
            report.error(
                "selection", "the on-chain selection seed is not the protocol's", round=rnd
            )
        selected = opened["selected"]
        expected = choose_clients(cfg, rnd, ctx.flag_counts, ctx.network, seed=seed_int(seed))
        if selected != expected:
            report.error(
                "selection",
                f"selected {selected[:8]}{'...' if len(selected) > 8 else ''}, but the seeded "
                f"draw is {expected[:8]}{'...' if len(expected) > 8 else ''}",
                round=rnd,
            )
        recs = view.commitments.get(rnd, [])
        report.commitments += len(recs)
        _check_accounting(ctx, rnd, selected, recs)
        _check_signatures(ctx, rnd, opened["base_model_hash"], recs)
        for batch, position, client in view.frauds.get(rnd, []):
            report.error(
                "signature",
                f"a fraud proof showed the aggregator posted a commitment (batch {batch}, "
                f"position {position}) this client did not sign; the ledger is halted",
                round=rnd,
                **ctx.who(client),
            )
        status = int(info["status"])
        if rnd in view.aborted:
            report.warning(
                "rounds", f"aborted by {view.aborted[rnd]} after its deadline", round=rnd
            )
            continue
        if status == OPEN:
            report.error("rounds", "opened but never finalized (the run stopped)", round=rnd)
            break
        if status != FINALIZED or rnd not in view.finalized:
            report.error("rounds", f"in an unknown state {status}", round=rnd)
            break
        fin = view.finalized[rnd]
        params, recorded = _check_round(
            ctx, rnd, params, selected, recs, fin, seed_int(seed), out.scoring
        )
        if params is None:
            break
        prev_hash = recorded
        out.final_hash = recorded
        out.finalized_rounds += 1
        acc, loss = evaluate(fed.model, params, fed.data.x_test, fed.data.y_test)
        out.metrics[rnd] = {"accuracy": acc, "loss": loss}
        fe = federated_evaluate(cfg, fed.model, params, fed.client_x, fed.client_y, rnd=rnd)
        if fe is not None:
            out.metrics[rnd].update(zip(FEDERATED_METRICS, fe, strict=True))
    else:
        if progress is not None and view.round_count:
            progress(view.round_count, view.round_count)
    return out


def _check_accounting(
    ctx: _Ctx, rnd: int, selected: list[int], recs: list[CommitmentRecord]
) -> None:
    """Every commitment is a selected client's (the contract refuses others) and each selected
    client is posted, self-submitted, or reported absent."""
    index = ctx.index
    seen: set[int] = set()
    chosen = set(selected)
    for rec in recs:
        c = index.get(rec.client, -1)
        if c < 0 or c not in chosen:
            ctx.report.error(
                "accounting", "committed without being selected", round=rnd, **ctx.who(c)
            )
        if c in seen:
            ctx.report.error("accounting", "committed twice in the round", round=rnd, **ctx.who(c))
        seen.add(c)
    for c in selected:
        if c not in seen:
            ctx.report.warning(
                "accounting",
                "selected, but no commitment was recorded (absent)",
                round=rnd,
                **ctx.who(c),
            )


def _check_signatures(ctx: _Ctx, rnd: int, base: bytes, recs: list[CommitmentRecord]) -> None:
    """A posted commitment must carry its client's signature; a self-submitted one was sent by
    the client itself (the event's sender), so it needs none."""
    domain = ctx.view.contract.domain
    index = ctx.index
    for rec in recs:
        if rec.source != "posted":
            continue
        c = Commitment(
            round=rnd,
            base_model_hash=base,
            update_hash=rec.update_hash,
            num_samples=rec.num_samples,
        )
        signer = recover_signer(c, r=rec.r, vs=rec.vs, domain=domain)
        if signer != rec.client:
            what = "an invalid signature" if signer is None else f"a signature by {signer}"
            ctx.report.error(
                "signature",
                f"the aggregator posted this client's commitment with {what} (forged or altered)",
                round=rnd,
                **ctx.who(index.get(rec.client, -1)),
            )


def _load_model(ctx: _Ctx, digest: str, *, where: str, round: int | None) -> torch.Tensor | None:
    try:
        return ctx.store.get_tensors(digest)[MODEL_KEY]
    except (StoreError, KeyError) as exc:
        ctx.report.error("store", f"{where}: {exc}", round=round)
        return None


def _received(
    ctx: _Ctx, rnd: int, recs: list[CommitmentRecord], outcomes: list[int]
) -> list[Received]:
    """Each commitment's blob from the store; missing ones are as the aggregator would have
    had them (nothing), an altered one is an error."""
    index = ctx.index
    out = []
    for rec, outcome in zip(recs, outcomes, strict=True):
        c = index.get(rec.client, -1)
        blob: bytes | None = None
        try:
            blob = ctx.store.get_bytes(rec.update_hash.hex())
        except StoreError as exc:
            if rec.update_hash.hex() in ctx.store:  # present, but no longer what was committed
                ctx.report.error(
                    "store",
                    f"update {rec.update_hash.hex()[:16]}...: {exc}",
                    round=rnd,
                    **ctx.who(c),
                )
            elif outcome in UNVERIFIABLE:
                ctx.report.warning(
                    "store",
                    f"rejected as {outcome_name(outcome)}; the blob is not in the store, so the "
                    "rejection cannot be verified",
                    round=rnd,
                    **ctx.who(c),
                )
        out.append(
            Received(
                client=c,
                num_samples=rec.num_samples,
                update=blob,
                verdict=USED
                if blob is not None
                else (outcome if outcome in UNVERIFIABLE else int(RejectReason.BLOB_MISSING)),
                detail="" if blob is not None else "no blob in the store",
            )
        )
    return out


def _check_round(
    ctx: _Ctx,
    rnd: int,
    params: torch.Tensor,
    selected: list[int],
    recs: list[CommitmentRecord],
    fin: dict[str, object],
    seed: int,
    scoring: dict[int, ScoringInputs],
) -> tuple[torch.Tensor | None, str]:
    """Re-make the round's decisions; returns the global model to go on from and its hash
    (and, with a task market, keeps what its scores need in ``scoring``)."""
    report, cfg, fed = ctx.report, ctx.cfg, ctx.fed
    outcomes = list(fin["outcomes"])  # type: ignore[call-overload]
    recorded = bytes(fin["global_model_hash"]).hex()  # type: ignore[call-overload]
    received = _received(ctx, rnd, recs, outcomes)
    checked = check_round(received, dim=fed.dim)
    ok = _check_committee(ctx, rnd, selected, recs, checked, params, seed)
    decision = decide_round(
        received,
        checked,
        rule=fed.rule,
        rule_ctx=fed.rule_context,
        round=rnd,
        params=params,
        accepted=ok,
    )
    for i, (rec, want, got) in enumerate(zip(recs, decision.outcomes, outcomes, strict=True)):
        if want == got:
            continue
        c = received[i].client
        detail = decision.details.get(i, "")
        if got == USED:
            msg = f"update {rec.update_hash.hex()[:16]}... was used but {detail or outcome_name(want)}"
        elif want == USED:
            msg = f"rejected as {outcome_name(got)}, but the update is valid"
        else:
            msg = f"rejected as {outcome_name(got)}, but re-checking finds {outcome_name(want)}"
        report.error("outcomes", msg, round=rnd, **ctx.who(c))
    if cfg.task is not None:
        index = ctx.index
        votes = [(index.get(m, -1), list(a)) for m, a, _, _ in ctx.view.votes.get(rnd, [])]
        used_updates = [checked.tensors[i] for i in decision.used]
        scoring[rnd] = ScoringInputs(
            params=params,
            used=[received[i].client for i in decision.used],
            used_updates=[t for t in used_updates if t is not None],
            num_samples={r.client: r.num_samples for r in received},
            order=[r.client for r in received],
            outcomes=outcomes,
            votes=votes,
        )
    if ctx.privacy is not None:  # DP-FedAvg: the noise of (seed, round) on the clipped sum
        used = [checked.tensors[i] for i in decision.used]
        ctx.privacy.apply(decision, [t for t in used if t is not None], rnd=rnd, dim=fed.dim)
    # the server's optimiser steps as the aggregator's did (its state: every earlier aggregate)
    agg = decision.aggregate
    new = ctx.server.step(params, agg) if agg is not None else params
    recomputed = sha256_hex(model_blob(new))
    if recomputed != recorded:
        opt = f" with server optimizer {cfg.server.optimizer}" if cfg.server is not None else ""
        if ctx.privacy is not None:
            opt += " and DP-FedAvg's clipping and seeded noise"
        report.error(
            "aggregation",
            f"recorded global model hash {recorded[:16]}..., but recomputing "
            f"{cfg.aggregation.name}{opt} over the {len(decision.used)} used updates gives "
            f"{recomputed[:16]}...",
            round=rnd,
        )
        stored = _load_model(ctx, recorded, where="global model blob", round=rnd)
        return stored, recorded  # go on from the recorded model: one bad round, one report
    try:
        ctx.store.get_bytes(recorded)
    except StoreError as exc:
        report.error("store", f"global model blob: {exc}", round=rnd)
    onchain = sorted(ctx.view.flags.get(rnd, []))
    if onchain != decision.flagged:
        report.error(
            "flags",
            f"flagged clients {onchain} on-chain, but the rule excluded or rejected {decision.flagged}",
            round=rnd,
        )
    for c in onchain:
        if 0 <= c < len(ctx.flag_counts):
            ctx.flag_counts[c] += 1
    max_flags = cfg.reputation.max_flags
    expected_excluded = sorted(c for c in onchain if max_flags and ctx.flag_counts[c] == max_flags)
    if sorted(ctx.view.exclusions.get(rnd, [])) != expected_excluded:
        report.error("flags", "the excluded clients do not follow from the flags", round=rnd)
    return new, recorded


def _check_committee(
    ctx: _Ctx,
    rnd: int,
    selected: list[int],
    recs: list[CommitmentRecord],
    checked: Checked,
    params: torch.Tensor,
    seed: int,
) -> list[bool] | None:
    """Members = the seeded draw; each vote signed by its member over the round's final
    digest; the tally; and each vote re-derived from the member's own data."""
    com = ctx.cfg.committee_enabled
    if com is None:
        return None
    report = ctx.report
    eligible = eligible_clients(ctx.flag_counts, ctx.cfg.reputation.max_flags)
    members = select_committee(
        seed=seed,
        round=rnd,
        num_clients=ctx.cfg.federation.num_clients,
        size=com.size,
        trainers=selected,
        eligible=eligible,
    )
    if ctx.view.committees.get(rnd) != members:
        report.error("committee", "the committee differs from the seeded draw", round=rnd)
    digest = ctx.view.infos[rnd]["commitments_digest"]
    if digest != commitments_digest(recs, ctx.view.contract.index_of):
        report.error(
            "committee", "the commitments digest does not follow from the commitments", round=rnd
        )
    votes = ctx.view.votes.get(rnd, [])
    index = ctx.index
    counts = [0] * len(recs)
    voted = set()
    for member, accept, r, vs in votes:
        m = index.get(member, -1)
        if m in voted:
            report.error("committee", "voted twice", round=rnd, **ctx.who(m))
        voted.add(m)
        if m not in members:
            report.error("committee", "voted without being a member", round=rnd, **ctx.who(m))
        vote = SignedVote(
            round=rnd, commitments_digest=digest, member=member, accept=accept, r=r, vs=vs
        )
        if recover_vote_signer(vote, domain=ctx.view.contract.domain) != member:
            report.error(
                "committee", "its recorded vote is not signed by it", round=rnd, **ctx.who(m)
            )
        if len(accept) != len(recs):
            report.error(
                "committee", "voted on a different number of commitments", round=rnd, **ctx.who(m)
            )
            continue
        for i, a in enumerate(accept):
            counts[i] += a
        if m in members and 0 <= m < len(ctx.fed.client_x):
            honest = member_vote(
                ctx.fed.model,
                params,
                checked.tensors,
                ctx.fed.client_x[m],
                ctx.fed.client_y[m],
                tolerance=com.tolerance,
            )
            diff = [i for i, (a, h) in enumerate(zip(accept, honest, strict=True)) if a != h]
            if diff:
                report.warning(
                    "committee",
                    f"its vote disagrees with its own data on commitments {diff[:8]}"
                    f"{'...' if len(diff) > 8 else ''} (a dishonest member?)",
                    round=rnd,
                    **ctx.who(m),
                )
    for m in members:
        if m not in voted:
            report.warning("committee", "a committee member did not vote", round=rnd, **ctx.who(m))
    if [int(x) for x in ctx.view.contract.accept_votes(rnd)] not in ([], counts):
        report.error("committee", "the contract's tally differs from the recorded votes", round=rnd)
    return accepted(counts, committee_size=len(members))


def commitments_digest(recs: list[CommitmentRecord], index_of: Callable[[str], int]) -> bytes:
    """The round's commitments digest re-derived from its events, as the contract chains it."""
    digest = bytes(32)
    batches: dict[int, list[CommitmentRecord]] = {}
    for rec in recs:
        if rec.source == "posted":
            batches.setdefault(rec.batch, []).append(rec)
    done: set[int] = set()
    for rec in recs:
        if rec.source == "submitted":
            digest = digest_after_submit(digest, rec.client, rec.update_hash, rec.num_samples)
        elif rec.batch not in done:
            done.add(rec.batch)
            packed = pack_records(
                batches[rec.batch], {r.client: index_of(r.client) for r in batches[rec.batch]}
            )
            digest = digest_after_post(digest, packed)
    return digest
