"""A round's entries on the task market, as the aggregator makes them and the audit remakes
them: the same function for both.

The updates that entered the rule are valued by the scorer on the requester's validation set
(:func:`~fedledger.incentives.utility.round_utility`: FedAvg of a coalition's updates from the
round's base model). Each client's entry: its positive value x ``scale`` as an integer, its work
(samples x local epochs, as its commitment records) when its update was used and 0 otherwise,
the bonus flag for the used clients with the most committee accept votes, and the validator flag
for the committee members whose vote agreed with the round's outcome on every commitment (each
accept is a used update, each reject one that was not) and who committed in the round (the
market pays only workers with a commitment). Without a committee nobody gets either flag.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from fedledger.incentives import UTILITY_SCORERS, round_utility
from fedledger.protocol.outcomes import USED

# (score, work, bonus, validator), as ledger.market.Entry holds them
EntryTuple = tuple[int, int, bool, bool]


def round_entries(
    *,
    model: torch.nn.Module,
    params: torch.Tensor,
    used: Sequence[int],
    used_updates: Sequence[torch.Tensor],
    num_samples: dict[int, int],
    order: Sequence[int],
    outcomes: Sequence[int],
    votes: Sequence[tuple[int, Sequence[int]]],
    num_clients: int,
    epochs: int,
    scoring: str,
    scale: int,
    seed: int,
    x_val: torch.Tensor,
    y_val: torch.Tensor,
) -> tuple[list[EntryTuple], dict[int, float]]:
    """(one entry per registered client, each used client's value). ``order``: the client of
    each of the round's commitments; ``outcomes``: each commitment's recorded outcome;
    ``votes``: (member, accept bit per commitment) for each committee member's vote."""
    values: dict[int, float] = {}
    if used:
        weights = torch.tensor([float(num_samples[c]) for c in used])
        u = round_utility(model, params, torch.stack(list(used_updates)), weights, x_val, y_val)
        phi = UTILITY_SCORERS[scoring](u, seed=seed)
        values = {c: float(v) for c, v in zip(used, phi, strict=True)}
    bonus: set[int] = set()
    if votes and used:
        accepts = {c: sum(v[i] for _, v in votes if i < len(v)) for i, c in enumerate(order)}
        top = max(accepts.get(c, 0) for c in used)
        bonus = {c for c in used if accepts.get(c, 0) == top}
    outcome_of = [o == USED for o in outcomes]
    validators = {m for m, v in votes if m in order and [bool(a) for a in v] == outcome_of}
    out: list[EntryTuple] = []
    for c in range(num_clients):
        score, work = 0, 0
        if c in values:
            score, work = int(max(values[c], 0.0) * scale), num_samples[c] * epochs
        out.append((score, work, c in bonus, c in validators))
    return out, values


def scoring_seed(seed: int, round: int) -> int:
    return seed * 1_000_003 + round
