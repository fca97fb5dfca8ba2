"""Event schedule of asynchronous (FedAsync / FedBuff) training in simulated time.

The schedule depends only on the devices' timings, never on the model, so it is computed up
front and the engine replays it: ``concurrency`` devices train at once; each finished update
enters the server's buffer; every ``buffer_size`` arrivals the server aggregates and commits a
new global version (available ``commit_s`` later); the freed slot goes to a random idle device,
which starts from the newest committed version.  ``buffer_size=1`` is FedAsync
(Xie et al. 2019), larger buffers are FedBuff (Nguyen et al. 2022).
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from fedledger.errors import ConfigError

JobSampler = Callable[
    [NDArray[np.int64], np.random.Generator], tuple[NDArray[np.float64], NDArray[np.bool_]]
]
"""(devices, rng) -> (job duration s, delivered) for jobs started now on those devices."""


@dataclass(frozen=True)
class AsyncEvent:
    """One update reaching the server."""

    time_s: float
    device: int
    base_version: int
    """Global version the device downloaded and trained from."""
    staleness: int
    """Versions committed between the download and this arrival."""
    aggregate: bool
    """True when this arrival fills the buffer: the engine aggregates and commits a version."""
    version: int
    """Server version after this arrival (base of later downloads once committed)."""


def async_schedule(
    num_devices: int,
    jobs: JobSampler,
    *,
    concurrency: int,
    buffer_size: int,
    num_updates: int,
    rng: np.random.Generator,
    commit_s: Callable[[np.random.Generator], float] | None = None,
) -> list[AsyncEvent]:
    """The first ``num_updates`` arrivals of asynchronous training (see the module docstring)."""
    if not 1 <= concurrency <= num_devices:
        raise ConfigError(f"async concurrency must be in [1, {num_devices}], got {concurrency}")
    if buffer_size < 1:
        raise ConfigError(f"async buffer_size must be >= 1, got {buffer_size}")
    heap: list[tuple[float, int, int, int, bool]] = []
    seq = 0
    committed_at = [0.0]  # committed_at[v]: when version v became downloadable

    def start(devices: NDArray[np.int64], now: float) -> None:
        nonlocal seq
        dur, ok = jobs(devices, rng)
        base = bisect.bisect_right(committed_at, now) - 1
        for d, t, good in zip(devices.tolist(), dur.tolist(), ok.tolist(), strict=True):
            heapq.heappush(heap, (now + t, seq, d, base, good))
            seq += 1

    everyone = np.arange(num_devices)
    busy = set(rng.choice(num_devices, size=concurrency, replace=False).tolist())
    start(np.array(sorted(busy), dtype=np.int64), 0.0)
    events: list[AsyncEvent] = []
    version, buffered = 0, 0
    guard = 0
    while len(events) < num_updates:
        guard += 1
        if guard > 100 * num_updates + 1000:
            raise ConfigError("async schedule makes no progress: every job fails (check dropout)")
        t, _, dev, base, good = heapq.heappop(heap)
        busy.discard(dev)
        if good:
            buffered += 1
            flush = buffered == buffer_size
            stale = version - base
            if flush:
                version += 1
                buffered = 0
                ready = t + (commit_s(rng) if commit_s else 0.0)
                committed_at.append(max(committed_at[-1], ready))
            events.append(AsyncEvent(t, dev, base, stale, flush, version))
        idle = np.setdiff1d(everyone, np.fromiter(busy, dtype=np.int64, count=len(busy)))
        nxt = int(rng.choice(idle))
        busy.add(nxt)
        start(np.array([nxt], dtype=np.int64), t)
    return events
