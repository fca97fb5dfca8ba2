"""One round, split the way it will be split across machines: the clients' side (train,
attack) and the aggregator's side (check, vote, aggregate). Storing and signing happen in the
ledger process (engine/ledger_process.py, engine/parties.py)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from fedledger.client.local import local_update
from fedledger.errors import UpdateRejected
from fedledger.federation import Federation
from fedledger.protocol.committee import (
    accepted,
    candidate_losses,
    honest_votes,
    select_committee,
    tally,
)
from fedledger.protocol.outcomes import RejectReason
from fedledger.protocol.seeds import client_generator
from fedledger.protocol.validation import check_blob, check_update, reason_code

log = logging.getLogger("fedledger")

UpdateHook = Callable[[int, int, torch.Tensor], "torch.Tensor | bytes"]


@dataclass
class Hooks:
    """Test seams. ``update(round, client, delta)`` may return a different tensor or raw blob
    bytes; ``drop_commitment(round, client)`` makes the aggregator leave a commitment out of
    its batch (the client then submits it itself)."""

    update: UpdateHook | None = None
    drop_commitment: Callable[[int, int], bool] | None = None


@dataclass
class ClientRound:
    """What the selected clients produced in a round."""

    updates: dict[int, torch.Tensor | bytes] = field(default_factory=dict)
    num_samples: dict[int, int] = field(default_factory=dict)
    train_loss: float = float("nan")


@dataclass
class AggregatorRound:
    """The aggregator's decisions in a round, in on-chain commitment order."""

    order: list[int]
    outcomes: list[int]
    dropped: list[int] = field(default_factory=list)
    committee: list[int] = field(default_factory=list)
    votes: list[list[int]] = field(default_factory=list)  # per member, per commitment (0/1)
    used: list[int] = field(default_factory=list)
    rejected: dict[int, str] = field(default_factory=dict)
    flagged: list[int] = field(default_factory=list)
    aggregate: torch.Tensor | None = None


def clients_round(
    fed: Federation,
    rnd: int,
    selected: list[int],
    params: torch.Tensor,
    *,
    hooks: Hooks,
) -> ClientRound:
    """Each selected client trains from ``params``; attackers act."""
    adv = fed.adversary
    out = ClientRound()
    losses = []
    trained: dict[int, torch.Tensor] = {}
    for cid in selected:
        x, y = fed.client_x[cid], fed.client_y[cid]
        if adv is not None:
            x, y = adv.client_data(rnd, cid, x, y)
        out.num_samples[cid] = len(y)
        if adv is not None and not adv.trains(rnd, cid):
            trained[cid] = torch.zeros_like(params)
            continue
        res = local_update(
            fed.cfg,
            fed.model,
            params,
            x,
            y,
            generator=client_generator(seed=fed.cfg.seed, round=rnd, client=cid),
        )
        losses.append(res.loss)
        trained[cid] = res.delta
    if adv is not None:
        trained = adv.poison_round(rnd, trained, global_params=params)
    out.train_loss = float(np.mean(losses)) if losses else float("nan")
    for cid in selected:
        upd = trained[cid]
        out.updates[cid] = upd if hooks.update is None else hooks.update(rnd, cid, upd)
    return out


def aggregator_round(
    fed: Federation,
    rnd: int,
    participants: list[int],
    params: torch.Tensor,
    clients: ClientRound,
    *,
    hooks: Hooks,
    selected: list[int] | None = None,
) -> AggregatorRound:
    """Check every update (dtype, shape, finite; blob bytes are parsed as safetensors), then
    run the rule over the valid ones.

    ``participants`` are the clients whose updates arrived; ``selected`` (default: the same)
    all those chosen for the round, whom the committee avoids. The commitments' on-chain order
    is the batch the aggregator posts, then the clients it left out (who submit their own); the
    rule sees the updates in that order.
    """
    trainers = participants if selected is None else selected
    dropped = [c for c in participants if hooks.drop_commitment and hooks.drop_commitment(rnd, c)]
    order = [c for c in participants if c not in dropped] + dropped
    agg = AggregatorRound(order=order, outcomes=[], dropped=dropped)
    used_updates: list[torch.Tensor] = []
    weights: list[float] = []
    for cid in order:
        n = clients.num_samples[cid]
        try:
            if n <= 0:
                raise UpdateRejected(RejectReason.BAD_SAMPLE_COUNT.name, f"{n} samples")
            u = clients.updates[cid]
            delta = (
                check_blob(u, dim=fed.dim) if isinstance(u, bytes) else check_update(u, dim=fed.dim)
            )
        except UpdateRejected as exc:
            log.warning("round %d: rejected client %d's update: %s", rnd, cid, exc)
            agg.rejected[cid] = str(exc)
            agg.outcomes.append(reason_code(exc))
            continue
        agg.outcomes.append(0)
        agg.used.append(cid)
        used_updates.append(delta)
        weights.append(float(n))
    com = fed.cfg.committee_enabled
    if com is not None:
        _committee_filter(
            fed,
            rnd,
            trainers,
            params,
            agg,
            used_updates,
            weights,
            tolerance=com.tolerance,
            size=com.size,
        )
    if used_updates:
        result = fed.rule(
            torch.stack(used_updates),
            torch.tensor(weights, dtype=torch.float32),
            ctx=fed.rule_context.context(rnd, agg.used, params),
        )
        fed.rule_context.update(agg.used, result)
        agg.aggregate = result.aggregate
        excluded = {agg.used[i] for i in result.excluded}
    else:
        excluded = set()
    # reputation: every client the rule excluded or whose update was rejected is flagged
    agg.flagged = sorted(excluded | set(agg.rejected))
    return agg


def _committee_filter(
    fed: Federation,
    rnd: int,
    selected: list[int],
    params: torch.Tensor,
    agg: AggregatorRound,
    used_updates: list[torch.Tensor],
    weights: list[float],
    *,
    tolerance: float,
    size: int,
) -> None:
    """Committee members vote on every commitment; updates without a majority are rejected."""
    agg.committee = select_committee(
        seed=fed.cfg.seed,
        round=rnd,
        num_clients=fed.cfg.federation.num_clients,
        size=size,
        trainers=selected,
    )
    pos = {c: i for i, c in enumerate(agg.order)}
    cand = torch.stack(used_updates) if used_updates else torch.zeros(0, fed.dim)
    adv = fed.adversary
    for m in agg.committee:
        vote = [0] * len(agg.order)
        if adv is not None and adv.active(rnd, m):  # a malicious member votes the other way
            for c in agg.used:
                vote[pos[c]] = int(c in adv.malicious)
        elif used_updates:
            losses = candidate_losses(fed.model, params, cand, fed.client_x[m], fed.client_y[m])
            for c, v in zip(agg.used, honest_votes(losses, tolerance=tolerance), strict=True):
                vote[pos[c]] = v
        agg.votes.append(vote)
    ok = accepted(tally(agg.votes), committee_size=len(agg.committee))
    keep = [k for k, c in enumerate(agg.used) if ok[pos[c]]]
    for c in agg.used:
        if not ok[pos[c]]:
            agg.rejected[c] = "COMMITTEE_REJECTED: no majority of the committee accepted it"
            agg.outcomes[pos[c]] = int(RejectReason.COMMITTEE_REJECTED)
            log.info("round %d: the committee rejected client %d's update", rnd, c)
    agg.used[:] = [agg.used[k] for k in keep]
    used_updates[:] = [used_updates[k] for k in keep]
    weights[:] = [weights[k] for k in keep]
