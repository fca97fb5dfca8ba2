"""What the permutation-sampling Shapley estimators share: the stopping rule on the running
means of the sampled marginal contributions."""

from __future__ import annotations

import numpy as np


def running_mean_error(records: list[np.ndarray], last_k: int) -> float:
    """The largest, over the last ``last_k`` running means of ``records``, of their mean
    relative distance to the latest one (Ghorbani & Zou's and GTG-Shapley's criterion);
    infinite while there are fewer than ``last_k`` records."""
    if len(records) < last_k:
        return float("inf")
    mem = np.asarray(records, dtype=np.float64)
    means = (np.cumsum(mem, axis=0) / np.arange(1, len(mem) + 1)[:, None])[-last_k:]
    errors = np.mean(np.abs(means - means[-1:]) / (np.abs(means[-1:]) + 1e-12), axis=1)
    return float(np.max(errors))
