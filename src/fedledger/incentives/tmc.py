"""Truncated Monte-Carlo Shapley (Ghorbani & Zou, "Data Shapley", ICML 2019, Algorithm 1).

Each sample is a random order of the players; walking it, a player's marginal contribution is
what the coalition gains when it joins. Once the coalition's value is within ``tolerance``
(relative) of the grand coalition's for more than ``patience`` players in a row, the rest of
the order is truncated (their marginals are 0). The estimate is the mean over samples; it stops
when the running means have settled (:func:`~fedledger.incentives._sampling.running_mean_error`
below ``convergence`` over the last ``last_k`` samples) or after ``max_permutations``.

Defaults are those of the authors' released code (tolerance 1 %, more than 5 in a row) and of
its stopping rule (the last 100 samples); ``convergence`` is the value GTG-Shapley's released
code uses with the same rule (0.05).
"""

from __future__ import annotations

import numpy as np

from fedledger.incentives._sampling import running_mean_error
from fedledger.incentives.utility import Utility


def tmc_shapley(
    u: Utility,
    *,
    seed: int = 0,
    tolerance: float = 0.01,
    patience: int = 5,
    convergence: float = 0.05,
    last_k: int = 100,
    max_permutations: int | None = None,
) -> np.ndarray:
    """(n,) float64 estimate of every player's Shapley value under ``u``.

    ``max_permutations`` defaults to max(last_k, 100 * n)."""
    n = u.n
    cap = max(last_k, 100 * n) if max_permutations is None else max_permutations
    rng = np.random.default_rng(seed)
    full = u.of_mask(u.grand)
    empty = u.of_mask(0)
    records: list[np.ndarray] = []
    while len(records) < cap and running_mean_error(records, last_k) >= convergence:
        order = rng.permutation(n)
        marginal = np.zeros(n, dtype=np.float64)
        mask, old, near = 0, empty, 0
        for i in order:
            mask |= 1 << int(i)
            new = u.of_mask(mask)
            marginal[i] = new - old
            old = new
            if abs(new - full) <= tolerance * abs(full):
                near += 1
                if near > patience:
                    break
            else:
                near = 0
        records.append(marginal)
    return np.mean(records, axis=0)
