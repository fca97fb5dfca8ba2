"""The exact Shapley value (Shapley 1953) by enumerating every coalition: the reference the
approximations are judged against, for rounds of up to :data:`MAX_PLAYERS` clients.

phi_i = sum over S not containing i of |S|! (n - |S| - 1)! / n! * (v(S + i) - v(S)).
"""

from __future__ import annotations

from math import factorial

import numpy as np

from fedledger.errors import ConfigError
from fedledger.incentives.utility import Utility

MAX_PLAYERS = 16  # 65,536 evaluations of the utility


def exact_shapley(u: Utility) -> np.ndarray:
    """(n,) float64: every player's Shapley value under ``u`` (2^n evaluations)."""
    n = u.n
    if n > MAX_PLAYERS:
        raise ConfigError(
            f"exact Shapley enumerates 2^n coalitions; {n} players is more than the "
            f"{MAX_PLAYERS} allowed: use gtg_shapley or tmc_shapley"
        )
    values = np.array([u.of_mask(m) for m in range(1 << n)], dtype=np.float64)
    sizes = np.array([bin(m).count("1") for m in range(1 << n)])
    weight = np.array(
        [factorial(s) * factorial(n - s - 1) / factorial(n) for s in range(n)], dtype=np.float64
    )
    masks = np.arange(1 << n)
    phi = np.zeros(n, dtype=np.float64)
    for i in range(n):
        without = masks[(masks >> i & 1) == 0]
        gains = values[without | (1 << i)] - values[without]
        phi[i] = float(np.sum(weight[sizes[without]] * gains))
    return phi
