"""Selection policies, deadlines, FedAsync/FedBuff staleness weights and the async schedule."""

from __future__ import annotations

import numpy as np
import pytest

from fedledger.errors import ConfigError
from fedledger.netsim.asyncfl import async_schedule
from fedledger.netsim.scheduling import (
    POLICIES,
    Candidates,
    fedasync_mixing,
    fedbuff_weights,
    on_time,
    staleness_hinge,
    staleness_polynomial,
)


def cands(n: int = 20) -> Candidates:
    expected = np.arange(1, n + 1, dtype=float)  # device i needs i + 1 seconds
    rate = np.linspace(1e6, 2e7, n)[::-1].copy()  # device 0 has the best uplink
    avail = np.ones(n, dtype=bool)
    avail[[3, 7]] = False
    rep = np.ones(n)
    rep[10] = 1000.0
    return Candidates(expected, rate, avail, rep)


@pytest.mark.parametrize(
    "name", ["random", "deadline_aware", "bandwidth_aware", "reputation_weighted"]
)
def test_policies_return_sorted_unique_available(name: str) -> None:
    c = cands()
    idx = POLICIES.get(name)(c, 5, round=0, rng=np.random.default_rng(0), deadline_s=10.0)
    assert idx.dtype == np.int64 and len(idx) == 5 and len(set(idx.tolist())) == 5
    assert np.all(np.diff(idx) > 0) and c.available[idx].all()


def test_policy_is_reproducible() -> None:
    a = POLICIES.get("random")(cands(), 5, round=3, rng=np.random.default_rng(7))
    b = POLICIES.get("random")(cands(), 5, round=3, rng=np.random.default_rng(7))
    assert a.tolist() == b.tolist()


def test_deadline_aware_keeps_to_the_deadline() -> None:
    c = cands()
    for seed in range(20):
        idx = POLICIES.get("deadline_aware")(
            c, 4, round=0, rng=np.random.default_rng(seed), deadline_s=8.0
        )
        assert np.all(c.expected_s[idx] <= 8.0)
    # too few qualify: the fastest available devices
    idx = POLICIES.get("deadline_aware")(
        c, 10, round=0, rng=np.random.default_rng(0), deadline_s=2.0
    )
    assert idx.tolist() == [0, 1, 2, 4, 5, 6, 8, 9, 10, 11]


def test_bandwidth_aware_takes_the_best_links() -> None:
    idx = POLICIES.get("bandwidth_aware")(cands(), 3, round=0, rng=np.random.default_rng(0))
    assert idx.tolist() == [0, 1, 2]


def test_reputation_weighted_prefers_reputation() -> None:
    hits = sum(
        10 in POLICIES.get("reputation_weighted")(cands(), 2, round=0, rng=np.random.default_rng(s))
        for s in range(50)
    )
    assert hits == 50


def test_fewer_available_than_k_and_bad_k() -> None:
    c = Candidates.uniform(4)
    c = Candidates(c.expected_s, c.rate_bps, np.array([True, False, True, False]), c.reputation)
    assert POLICIES.get("random")(c, 3, round=0, rng=np.random.default_rng(0)).tolist() == [0, 2]
    with pytest.raises(ConfigError):
        POLICIES.get("random")(c, 0, round=0, rng=np.random.default_rng(0))


def test_on_time_drops_stragglers() -> None:
    done = np.array([1.0, 5.0, np.inf, 2.0])
    assert on_time(done, 3.0).tolist() == [True, False, False, True]
    assert on_time(done, None).tolist() == [True, True, False, True]


def test_staleness_functions() -> None:
    s = np.array([0, 1, 3, 8])
    assert staleness_polynomial(s, a=0.5) == pytest.approx([1.0, 2**-0.5, 0.5, 1 / 3])
    assert staleness_hinge(s, a=0.5, b=4) == pytest.approx([1.0, 1.0, 1.0, 1 / 3])
    assert fedasync_mixing(s, alpha=0.6, kind="constant") == pytest.approx([0.6] * 4)
    w = fedbuff_weights(np.array([0, 3]))
    assert w == pytest.approx([0.5, 0.25])
    with pytest.raises(ConfigError):
        fedasync_mixing(s, alpha=0.0)


def test_async_schedule_orders_events_and_counts_staleness() -> None:
    speed = np.linspace(1.0, 10.0, 30)

    def jobs(devs: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return speed[devs] * rng.uniform(0.9, 1.1, devs.size), np.ones(devs.size, dtype=bool)

    ev = async_schedule(
        30, jobs, concurrency=10, buffer_size=3, num_updates=300, rng=np.random.default_rng(0)
    )
    assert len(ev) == 300
    times = [e.time_s for e in ev]
    assert times == sorted(times)
    assert sum(e.aggregate for e in ev) == 100 and ev[-1].version == 100
    assert all(e.staleness >= 0 and e.base_version <= e.version for e in ev)
    assert max(e.staleness for e in ev) > 0  # slow devices come back to a newer model
    # FedAsync: every arrival is a new version
    ev1 = async_schedule(
        30, jobs, concurrency=5, buffer_size=1, num_updates=50, rng=np.random.default_rng(0)
    )
    assert [e.version for e in ev1] == list(range(1, 51))


def test_async_schedule_rejects_bad_settings() -> None:
    def never(devs: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return np.ones(devs.size), np.zeros(devs.size, dtype=bool)

    with pytest.raises(ConfigError, match="concurrency"):
        async_schedule(
            5, never, concurrency=6, buffer_size=1, num_updates=1, rng=np.random.default_rng(0)
        )
    with pytest.raises(ConfigError, match="no progress"):
        async_schedule(
            5, never, concurrency=2, buffer_size=1, num_updates=1, rng=np.random.default_rng(0)
        )
