"""One simulated round, split the way it is split across machines: the clients' side (train,
attack, hand the update to the device that signs it) and the aggregator's side (receipts,
checks, committee, rule: :func:`fedledger.protocol.decide.decide_round`)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

from fedledger.attacks.adversary import Adversary
from fedledger.client.local import local_updates
from fedledger.client.vectorised import ClientData
from fedledger.engine.devices import Receipt, TamperHook
from fedledger.federation import Federation
from fedledger.ledger.signing import SignedCommitment
from fedledger.protocol.committee import accepted, member_vote, tally
from fedledger.protocol.decide import Received, RoundDecision, check_round, decide_round
from fedledger.protocol.outcomes import USED, RejectReason
from fedledger.protocol.seeds import client_generator
from fedledger.protocol.selection import select_committee

if TYPE_CHECKING:
    from fedledger.incentives.entries import EntryTuple

log = logging.getLogger("fedledger")

UpdateHook = Callable[[int, int, torch.Tensor], "torch.Tensor | bytes"]
Emit = Callable[[int, "torch.Tensor | bytes", int], None]


@dataclass
class Hooks:
    """Test seams.

    ``update(round, client, delta)``: what the client sends instead (a tensor or raw blob
    bytes). ``drop_commitment(round, client)``: the aggregator leaves the client's commitment
    out of its batch (the client then submits it itself). ``tamper(round, client, blob,
    signed)``: what reaches the aggregator instead (another blob, None for a lost blob, or
    another signed commitment). Aggregator misbehaviour: ``select(round, selected)``, the
    clients it selects instead of the seeded draw; ``forge(round, batch)``, the commitments it
    posts instead of the ones it received; ``score(round, entries)``, the market entries it
    posts instead of the ones it scored."""

    update: UpdateHook | None = None
    drop_commitment: Callable[[int, int], bool] | None = None
    tamper: TamperHook | None = None
    select: Callable[[int, list[int]], list[int]] | None = None
    forge: Callable[[int, list[SignedCommitment]], list[SignedCommitment]] | None = None
    # the task market's entries the aggregator posts instead of the ones it scored
    # the task market's entries of a round, (score, work, bonus, validator) per worker
    score: Callable[[int, list[EntryTuple]], list[EntryTuple]] | None = None


@dataclass
class ClientRound:
    """What the selected clients produced in a round."""

    updates: dict[int, torch.Tensor | bytes] = field(default_factory=dict)
    num_samples: dict[int, int] = field(default_factory=dict)
    train_loss: float = float("nan")


@dataclass
class AggregatorRound:
    """The aggregator's decisions in a round, in on-chain commitment order."""

    order: list[int]  # clients, on-chain order
    decision: RoundDecision
    posted: list[int] = field(default_factory=list)  # clients whose commitment it posts
    dropped: list[int] = field(default_factory=list)  # left out of its batch (self-submit)
    refused: dict[int, str] = field(default_factory=dict)  # BAD_SIGNATURE: never on-chain
    committee: list[int] = field(default_factory=list)
    votes: list[list[int]] = field(default_factory=list)  # per member, per commitment (0/1)
    used_updates: list[torch.Tensor] = field(default_factory=list)  # aligned with ``used``

    @property
    def used(self) -> list[int]:
        return [self.order[i] for i in self.decision.used]

    @property
    def rejected(self) -> dict[int, str]:
        """Every refused or rejected client with its reason (rejected.csv)."""
        out = dict(self.refused)
        for i, o in enumerate(self.decision.outcomes):
            if o != USED:
                out[self.order[i]] = self.decision.details.get(i, RejectReason(o).name)
        return out


def clients_round(
    fed: Federation,
    adv: Adversary | None,
    rnd: int,
    selected: list[int],
    params: torch.Tensor,
    *,
    hooks: Hooks,
    emit: Emit | None = None,
) -> ClientRound:
    """Each selected client trains from ``params``; attackers act. ``emit(client, update,
    num_samples)`` is called as soon as a client's update is final (honest clients right after
    training; model-poisoning attackers once they have seen the benign updates)."""
    out = ClientRound()
    losses = []
    trained: dict[int, torch.Tensor] = {}
    late: list[int] = []  # whose update the attack still changes

    def final(cid: int, upd: torch.Tensor) -> None:
        u = upd if hooks.update is None else hooks.update(rnd, cid, upd)
        out.updates[cid] = u
        if emit is not None:
            emit(cid, u, out.num_samples[cid])

    poisons = adv is not None and (adv.attack.poisons_updates or not adv.attack.trains)
    batch: list[ClientData] = []  # the clients that train, in selection order
    for cid in selected:
        x, y = fed.client_x[cid], fed.client_y[cid]
        if adv is not None:
            x, y = adv.client_data(rnd, cid, x, y)
        out.num_samples[cid] = len(y)
        if adv is None or adv.trains(rnd, cid):
            g = client_generator(seed=fed.cfg.seed, round=rnd, client=cid)
            batch.append((x, y, g))
    # sequential: each result as soon as its client trained; vectorised: per chunk
    results = local_updates(fed.cfg, fed.model, params, batch)
    for cid in selected:
        changed_later = poisons and adv is not None and adv.active(rnd, cid)
        if adv is not None and not adv.trains(rnd, cid):
            trained[cid] = torch.zeros_like(params)
        else:
            res = next(results)
            losses.append(res.loss)
            trained[cid] = res.delta
        if changed_later:
            late.append(cid)
        else:
            final(cid, trained[cid])
    if adv is not None and late:
        trained = adv.poison_round(rnd, trained, global_params=params)
        for cid in late:
            final(cid, trained[cid])
    out.train_loss = float(np.mean(losses)) if losses else float("nan")
    return out


def aggregator_round(
    fed: Federation,
    adv: Adversary | None,
    rnd: int,
    participants: list[int],
    params: torch.Tensor,
    clients: ClientRound,
    *,
    hooks: Hooks,
    selected: list[int],
    receipts: dict[int, Receipt] | None,
    eligible: list[int] | None,
    committee_seed: int,
) -> AggregatorRound:
    """Receipts first (a commitment that is not the client's own is refused and never posted;
    a blob that did not arrive intact is recorded as such), then the checks, the committee and
    the rule over the rest. The on-chain order is the aggregator's batch (ascending client
    index) followed by the clients it left out, who submit their own."""
    refused: dict[int, str] = {}
    arrived = []
    for c in participants:
        r = receipts.get(c) if receipts is not None else None
        if r is not None and r.verdict == RejectReason.BAD_SIGNATURE:
            refused[c] = f"BAD_SIGNATURE: {r.detail}"
            log.warning("round %d: refused client %d's commitment: %s", rnd, c, r.detail)
        else:
            arrived.append(c)
    dropped = [c for c in arrived if hooks.drop_commitment and hooks.drop_commitment(rnd, c)]
    posted = [c for c in arrived if c not in dropped]
    order = posted + dropped
    received = []
    for c in order:
        r = receipts.get(c) if receipts is not None else None
        update: torch.Tensor | bytes | None = clients.updates[c]
        if r is not None and r.blob is not None:  # the network delivered other bytes
            update = r.blob
        received.append(
            Received(
                client=c,
                num_samples=clients.num_samples[c],
                update=update,
                verdict=USED if r is None else r.verdict,
                detail="" if r is None else r.detail,
            )
        )
    checked = check_round(received, dim=fed.dim)
    committee: list[int] = []
    votes: list[list[int]] = []
    ok: list[bool] | None = None
    com = fed.cfg.committee_enabled
    if com is not None:
        committee = select_committee(
            seed=committee_seed,
            round=rnd,
            num_clients=fed.cfg.federation.num_clients,
            size=com.size,
            trainers=selected,
            eligible=eligible,
        )
        for m in committee:
            if adv is not None and adv.active(rnd, m):  # a malicious member votes the other way
                vote = [
                    int(t is not None and c in adv.malicious)
                    for c, t in zip(order, checked.tensors, strict=True)
                ]
            else:
                vote = member_vote(
                    fed.model,
                    params,
                    checked.tensors,
                    fed.client_x[m],
                    fed.client_y[m],
                    tolerance=com.tolerance,
                )
            votes.append(vote)
        ok = accepted(tally(votes) or [0] * len(order), committee_size=len(committee))
    decision = decide_round(
        received,
        checked,
        rule=fed.rule,
        rule_ctx=fed.rule_context,
        round=rnd,
        params=params,
        accepted=ok,
    )
    for i, detail in decision.details.items():
        level = (
            logging.INFO
            if decision.outcomes[i] == RejectReason.COMMITTEE_REJECTED
            else logging.WARNING
        )
        log.log(level, "round %d: rejected client %d's update: %s", rnd, order[i], detail)
    used_updates = [checked.tensors[i] for i in decision.used]
    return AggregatorRound(
        order=order,
        decision=decision,
        posted=posted,
        dropped=dropped,
        refused=refused,
        committee=committee,
        votes=votes,
        used_updates=[t for t in used_updates if t is not None],
    )
