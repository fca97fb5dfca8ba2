"""A round's entries on the task market, as the aggregator makes them and the audit remakes
them: the same function for both.

The updates that entered the rule are valued by the scorer on the requester's validation set
(:func:`~fedledger.incentives.utility.round_utility`: FedAvg of a coalition's updates from the
round's base model). Each client's entry: its positive value x ``scale`` as an integer, its work
(samples x local epochs, as its commitment records) when its update was used and 0 otherwise,
and the bonus flag for the used clients with the most committee accept votes (none without a
committee).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from fedledger.incentives import UTILITY_SCORERS, round_utility

EntryTuple = tuple[int, int, bool]  # (score, work, bonus), as ledger.market.Entry holds them


def round_entries(
    *,
    model: torch.nn.Module,
    params: torch.Tensor,
    used: Sequence[int],
    used_updates: Sequence[torch.Tensor],
    num_samples: dict[int, int],
    accepts: dict[int, int] | None,
    num_clients: int,
    epochs: int,
    scoring: str,
    scale: int,
    seed: int,
    x_val: torch.Tensor,
    y_val: torch.Tensor,
) -> tuple[list[EntryTuple], dict[int, float]]:
    """(one entry per registered client, each used client's value)."""
    values: dict[int, float] = {}
    if used:
        weights = torch.tensor([float(num_samples[c]) for c in used])
        u = round_utility(model, params, torch.stack(list(used_updates)), weights, x_val, y_val)
        phi = UTILITY_SCORERS[scoring](u, seed=seed)
        values = {c: float(v) for c, v in zip(used, phi, strict=True)}
    bonus: set[int] = set()
    if accepts and used:
        top = max(accepts.get(c, 0) for c in used)
        bonus = {c for c in used if accepts.get(c, 0) == top}
    out: list[EntryTuple] = []
    for c in range(num_clients):
        if c in values:
            out.append((int(max(values[c], 0.0) * scale), num_samples[c] * epochs, c in bonus))
        else:
            out.append((0, 0, False))
    return out, values


def scoring_seed(seed: int, round: int) -> int:
    return seed * 1_000_003 + round
