"""Client selection, deadlines and staleness weights: pure functions over numpy arrays.

Selection policies have one signature, ``select(devices, k, *, round, rng, deadline_s=None)
-> sorted indices``, and live in the ``POLICIES`` registry:

- ``random``: k available devices uniformly (FedAvg, McMahan et al. 2017).
- ``deadline_aware``: FedCS-style (Nishio & Yonetani 2019): only devices expected to finish
  before the deadline, k of them at random; the fastest when too few qualify or no deadline.
- ``bandwidth_aware``: the k available devices with the highest expected uplink rate.
- ``reputation_weighted``: k devices drawn without replacement with probability ~ reputation.

Staleness weights for asynchronous aggregation: FedAsync (Xie, Koyejo, Gupta 2019) mixes
x <- (1 - a_t) x + a_t x_new with a_t = alpha s(t - tau), s constant, polynomial (1 + t)^-a or
hinge; FedBuff (Nguyen et al. 2022) averages a buffer of K updates each scaled by
1 / sqrt(1 + staleness).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray

from fedledger.errors import ConfigError
from fedledger.registry import Registry

FloatArray = NDArray[np.float64]
IndexArray = NDArray[np.int64]


@dataclass(frozen=True)
class Candidates:
    """What a selection policy may know about each of the n devices this round."""

    expected_s: FloatArray
    """Expected train + upload time (s) of each device for this round's workload."""
    rate_bps: FloatArray
    """Expected uplink rate (bit/s)."""
    available: NDArray[np.bool_]
    """Online this round."""
    reputation: FloatArray
    """Non-negative reputation (e.g. past scores from the ledger); ones when unknown."""

    @staticmethod
    def uniform(n: int) -> Candidates:
        return Candidates(np.ones(n), np.ones(n), np.ones(n, dtype=bool), np.ones(n))


class SelectionPolicy(Protocol):
    def __call__(
        self,
        devices: Candidates,
        k: int,
        *,
        round: int,
        rng: np.random.Generator,
        deadline_s: float | None = None,
    ) -> IndexArray: ...


POLICIES: Registry[SelectionPolicy] = Registry("selection policy")


def _pool(devices: Candidates, k: int) -> IndexArray:
    if k < 1:
        raise ConfigError(f"clients per round must be >= 1, got {k}")
    return np.flatnonzero(devices.available).astype(np.int64)


def _sorted(idx: ArrayLike) -> IndexArray:
    return np.sort(np.asarray(idx, dtype=np.int64))


@POLICIES.register("random")
def select_random(
    devices: Candidates,
    k: int,
    *,
    round: int,
    rng: np.random.Generator,
    deadline_s: float | None = None,
) -> IndexArray:
    pool = _pool(devices, k)
    return _sorted(rng.choice(pool, size=min(k, pool.size), replace=False))


@POLICIES.register("deadline_aware")
def select_deadline_aware(
    devices: Candidates,
    k: int,
    *,
    round: int,
    rng: np.random.Generator,
    deadline_s: float | None = None,
) -> IndexArray:
    pool = _pool(devices, k)
    t = devices.expected_s[pool]
    if deadline_s is not None:
        fit = pool[t <= deadline_s]
        if fit.size >= k:
            return _sorted(rng.choice(fit, size=k, replace=False))
    order = np.lexsort((rng.random(pool.size), t))  # fastest first, random among equals
    return _sorted(pool[order[:k]])


@POLICIES.register("bandwidth_aware")
def select_bandwidth_aware(
    devices: Candidates,
    k: int,
    *,
    round: int,
    rng: np.random.Generator,
    deadline_s: float | None = None,
) -> IndexArray:
    pool = _pool(devices, k)
    order = np.lexsort((rng.random(pool.size), -devices.rate_bps[pool]))
    return _sorted(pool[order[:k]])


@POLICIES.register("reputation_weighted")
def select_reputation_weighted(
    devices: Candidates,
    k: int,
    *,
    round: int,
    rng: np.random.Generator,
    deadline_s: float | None = None,
) -> IndexArray:
    pool = _pool(devices, k)
    w = np.clip(devices.reputation[pool], 0.0, None) + 1e-12
    return _sorted(rng.choice(pool, size=min(k, pool.size), replace=False, p=w / w.sum()))


def on_time(completion_s: ArrayLike, deadline_s: float | None) -> NDArray[np.bool_]:
    """Which participants delivered before the deadline (stragglers are dropped)."""
    c = np.asarray(completion_s, dtype=np.float64)
    return np.isfinite(c) if deadline_s is None else c <= deadline_s


def check_deadline(
    deadline_s: float | None, fastest_s: float, *, field: str = "network.deadline_s"
) -> None:
    """ConfigError when no device could ever meet the deadline."""
    if deadline_s is not None and deadline_s < fastest_s:
        raise ConfigError(
            f"{field}={deadline_s:g} s is impossible: the fastest device needs {fastest_s:.4g} s "
            f"to train and upload its update; raise the deadline or shrink the workload"
        )


# --- staleness weights -------------------------------------------------------------------------


class StalenessFn(Protocol):
    def __call__(self, staleness: ArrayLike, *, a: float = 0.5, b: float = 4.0) -> FloatArray: ...


STALENESS: Registry[StalenessFn] = Registry("staleness function")


def _st(staleness: ArrayLike) -> FloatArray:
    s = np.asarray(staleness, dtype=np.float64)
    if np.any(s < 0):
        raise ValueError("staleness must be >= 0")
    return s


@STALENESS.register("constant")
def staleness_constant(staleness: ArrayLike, *, a: float = 0.5, b: float = 4.0) -> FloatArray:
    return np.ones_like(_st(staleness))


@STALENESS.register("polynomial")
def staleness_polynomial(staleness: ArrayLike, *, a: float = 0.5, b: float = 4.0) -> FloatArray:
    """FedAsync's s(t) = (t + 1)^-a."""
    return np.power(_st(staleness) + 1.0, -a)


@STALENESS.register("hinge")
def staleness_hinge(staleness: ArrayLike, *, a: float = 0.5, b: float = 4.0) -> FloatArray:
    """FedAsync's s(t) = 1 for t <= b, else 1 / (a (t - b) + 1)."""
    s = _st(staleness)
    return np.where(s <= b, 1.0, 1.0 / (a * (s - b) + 1.0))


def fedasync_mixing(
    staleness: ArrayLike,
    *,
    alpha: float = 0.6,
    kind: str = "polynomial",
    a: float = 0.5,
    b: float = 4.0,
) -> FloatArray:
    """FedAsync's a_t = alpha * s(staleness), the weight of x_new in x <- (1-a_t) x + a_t x_new."""
    if not 0.0 < alpha <= 1.0:
        raise ConfigError(f"FedAsync alpha must be in (0, 1], got {alpha}")
    return alpha * STALENESS.get(kind)(staleness, a=a, b=b)


def fedbuff_weights(staleness: ArrayLike, *, a: float = 0.5) -> FloatArray:
    """FedBuff: weight of each of the K buffered deltas, (1 + staleness)^-a / K.

    The server then applies x <- x + eta_g * sum_i w_i delta_i (Nguyen et al. 2022, Alg. 1).
    """
    s = _st(staleness)
    return np.power(1.0 + s, -a) / max(1, s.size)
