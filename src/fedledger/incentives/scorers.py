"""The scorers that value a round's clients through a Utility: ``scorer(utility, seed=...)``,
by the name ``incentives.scoring`` gives."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from fedledger.incentives.exact import exact_shapley
from fedledger.incentives.gtg import gtg_shapley
from fedledger.incentives.loo import leave_one_out
from fedledger.incentives.tmc import tmc_shapley

Scorer = Callable[..., np.ndarray]

UTILITY_SCORERS: dict[str, Scorer] = {
    "exact_shapley": lambda u, *, seed=0: exact_shapley(u),
    "leave_one_out": lambda u, *, seed=0: leave_one_out(u),
    "tmc_shapley": tmc_shapley,
    "gtg_shapley": gtg_shapley,
}
