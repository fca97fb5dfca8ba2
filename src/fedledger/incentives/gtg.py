"""GTG-Shapley: guided truncation gradient Shapley (Liu, Chen, Sun, Yang, Yu: "GTG-Shapley:
Efficient and Accurate Participant Contribution Evaluation in Federated Learning", ACM TIST
2022, Algorithm 1).

A round's contributions are valued from its updates, without retraining: the utility of a
coalition is the validation score of the global model moved by that coalition's aggregate
(:func:`~fedledger.incentives.utility.round_utility`). Three savings over plain Monte-Carlo:

* between-round truncation: when the whole round moved the score by less than
  ``round_threshold``, every contribution of the round is 0 (2 evaluations);
* within-round truncation: once a coalition's value is within ``eps`` of the grand
  coalition's, the remaining players of that order add 0 without evaluating;
* guided sampling: the orders come in cycles of n, in which each player takes the first
  position once (the rest of the order random), so that every player's marginal against the
  empty coalition, the most informative one, is sampled early and equally.

Sampling stops after at least ``converge_min`` orders once the running means have settled
(:func:`~fedledger.incentives._sampling.running_mean_error` over the last ``last_k`` orders at
most ``criterion``), or after max(converge_min, ``max_share`` * 2^n) orders (at most 2^n).
The defaults are those of the authors' released implementation (eps 0.001, round threshold
0.001, converge_min max(30, n), last_k 10, criterion 0.05, max share 0.8), without its random
jitter of the cap.
"""

from __future__ import annotations

import numpy as np

from fedledger.incentives._sampling import running_mean_error
from fedledger.incentives.utility import Utility


def gtg_shapley(
    u: Utility,
    *,
    seed: int = 0,
    eps: float = 0.001,
    round_threshold: float = 0.001,
    converge_min: int | None = None,
    last_k: int = 10,
    criterion: float = 0.05,
    max_share: float = 0.8,
) -> np.ndarray:
    """(n,) float64 estimate of every player's Shapley value under ``u``."""
    n = u.n
    full = u.of_mask(u.grand)
    empty = u.of_mask(0)
    if abs(full - empty) < round_threshold:  # between-round truncation
        return np.zeros(n, dtype=np.float64)
    minimum = max(30, n) if converge_min is None else converge_min
    cap = int(min(2**n, max(minimum, max_share * 2**n)))
    rng = np.random.default_rng(seed)
    records: list[np.ndarray] = []
    while len(records) < cap and (
        len(records) < minimum or running_mean_error(records, last_k) > criterion
    ):
        for first in range(n):  # guided: each player leads one order of the cycle
            rest = np.array([i for i in range(n) if i != first], dtype=np.int64)
            order = np.concatenate(([first], rng.permutation(rest)))
            marginal = np.zeros(n, dtype=np.float64)
            mask, old = 0, empty
            for i in order:
                mask |= 1 << int(i)
                # within-round truncation: close enough to the grand coalition, add nothing
                new = u.of_mask(mask) if abs(full - old) >= eps else old
                marginal[i] = new - old
                old = new
            records.append(marginal)
    return np.mean(records, axis=0)
