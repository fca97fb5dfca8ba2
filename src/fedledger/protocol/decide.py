"""The per-commitment decisions of a round, one pure function shared by the aggregator (which
makes them) and the auditor (which re-makes them from the store and the chain).

For each on-chain commitment, in on-chain order: the receipt's verdict (a blob that never
arrived or does not hash to the commitment), then the update's checks (safetensors with one
finite float32 tensor of the model's size), then the committee's majority when there is one;
every update still standing enters the aggregation rule, weighted by its committed sample
count, in on-chain order. Flags: every rejected client and every client the rule excluded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from fedledger.aggregation import AggregationRule
from fedledger.errors import UpdateRejected
from fedledger.protocol.outcomes import USED, RejectReason
from fedledger.protocol.rulectx import RuleContext
from fedledger.protocol.validation import check_blob, check_update, reason_code


@dataclass(frozen=True)
class Received:
    """What the aggregator holds for one on-chain commitment."""

    client: int  # registration index
    num_samples: int
    update: torch.Tensor | bytes | None  # the update that arrived (a tensor, or raw blob bytes)
    verdict: int = USED  # the receipt check's verdict: USED, BLOB_MISSING or HASH_MISMATCH
    detail: str = ""


@dataclass(frozen=True)
class Checked:
    """Each commitment's outcome after the receipt and update checks (before the committee)."""

    outcomes: list[int]
    tensors: list[torch.Tensor | None]
    details: dict[int, str]  # position -> why it was rejected

    def candidates(self) -> list[int]:
        """Positions whose update passed the checks."""
        return [i for i, o in enumerate(self.outcomes) if o == USED]


@dataclass
class RoundDecision:
    outcomes: list[int]  # per commitment: USED (entered the rule) or a RejectReason
    used: list[int]  # positions that entered the rule, in order
    excluded: list[int]  # positions the rule excluded
    flagged: list[int]  # clients (registration indices), ascending
    details: dict[int, str] = field(default_factory=dict)
    aggregate: torch.Tensor | None = None


def check_round(received: Sequence[Received], *, dim: int) -> Checked:
    outcomes: list[int] = []
    tensors: list[torch.Tensor | None] = []
    details: dict[int, str] = {}
    for i, rec in enumerate(received):
        try:
            if rec.verdict != USED:
                raise UpdateRejected(RejectReason(rec.verdict).name, rec.detail)
            if rec.update is None:
                raise UpdateRejected(RejectReason.BLOB_MISSING.name, "no blob arrived")
            if rec.num_samples <= 0:
                raise UpdateRejected(
                    RejectReason.BAD_SAMPLE_COUNT.name, f"{rec.num_samples} samples"
                )
            u = rec.update
            delta = check_blob(u, dim=dim) if isinstance(u, bytes) else check_update(u, dim=dim)
        except UpdateRejected as exc:
            outcomes.append(reason_code(exc))
            tensors.append(None)
            details[i] = str(exc)
            continue
        outcomes.append(USED)
        tensors.append(delta)
    return Checked(outcomes=outcomes, tensors=tensors, details=details)


def decide_round(
    received: Sequence[Received],
    checked: Checked,
    *,
    rule: AggregationRule,
    rule_ctx: RuleContext,
    round: int,
    params: torch.Tensor,
    accepted: Sequence[bool] | None = None,
) -> RoundDecision:
    """Apply the committee's majority (``accepted[i]``, when there is a committee) and the rule.

    ``rule_ctx`` carries cross-round rule state (FoolsGold's history) and is updated."""
    outcomes = list(checked.outcomes)
    details = dict(checked.details)
    if accepted is not None:
        for i in checked.candidates():
            if not accepted[i]:
                outcomes[i] = int(RejectReason.COMMITTEE_REJECTED)
                details[i] = "COMMITTEE_REJECTED: no majority of the committee accepted it"
    used = [i for i, o in enumerate(outcomes) if o == USED]
    decision = RoundDecision(outcomes=outcomes, used=used, excluded=[], flagged=[], details=details)
    if used:
        clients = [received[i].client for i in used]
        tensors = [checked.tensors[i] for i in used]
        result = rule(
            torch.stack([t for t in tensors if t is not None]),
            torch.tensor([float(received[i].num_samples) for i in used], dtype=torch.float32),
            ctx=rule_ctx.context(round, clients, params),
        )
        rule_ctx.update(clients, result)
        decision.aggregate = result.aggregate
        decision.excluded = [used[k] for k in result.excluded]
    rejected = {received[i].client for i, o in enumerate(outcomes) if o != USED}
    decision.flagged = sorted(rejected | {received[i].client for i in decision.excluded})
    return decision
