"""Who trains in a round: a seeded draw from the clients that reputation still admits."""

from __future__ import annotations

import numpy as np


def select_clients(
    *, seed: int, round: int, num_clients: int, k: int, eligible: list[int] | None = None
) -> list[int]:
    """Seeded choice of k distinct clients for a round, sorted; from ``eligible`` when given
    (clients excluded for their reputation are not eligible)."""
    pool = list(range(num_clients)) if eligible is None else sorted(eligible)
    k = min(k, len(pool))
    rng = np.random.default_rng([seed, round, 0x5E1EC7])
    return sorted(pool[int(i)] for i in rng.choice(len(pool), size=k, replace=False))


def eligible_clients(flag_counts: list[int], max_flags: int | None) -> list[int] | None:
    """Clients still eligible under the reputation rule (None: everybody)."""
    if max_flags is None:
        return None
    return [c for c, n in enumerate(flag_counts) if n < max_flags]
