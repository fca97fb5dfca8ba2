"""PBFT (Castro & Liskov 1999): pre-prepare, prepare, commit among n >= 3f + 1 replicas.

Every replica sends each message to the n - 1 others one after the other on its own uplink, so
one decision costs 2n(n - 1) messages (O(n^2)) and its latency grows with n.  Replica 0 is the
primary; the ``crashed`` highest-numbered replicas stay silent.  A replica is prepared once it
holds the pre-prepare and 2f prepares (its own included), committed once it holds 2f + 1
commits; the block is final when 2f + 1 replicas have committed.
"""

from __future__ import annotations

import numpy as np

from fedledger.errors import ConfigError
from fedledger.netsim.channel import link_rate
from fedledger.netsim.config import NetworkConfig
from fedledger.netsim.consensus.base import CONSENSUS, BlockPhase, ChainStats, FloatArray


def check_faults(
    n: int, faulty: int | None, crashed: int = 0, *, field: str = "network.pbft"
) -> int:
    """Return f; raise ConfigError unless f < n/3 and crashed <= f."""
    f = (n - 1) // 3 if faulty is None else faulty
    if 3 * f >= n:
        raise ConfigError(
            f"{field}.faulty={f} with n={n} replicas violates f < n/3: PBFT needs n >= 3f + 1 = "
            f"{3 * f + 1}; lower faulty to at most {(n - 1) // 3} or raise num_miners"
        )
    if crashed > f:
        raise ConfigError(f"{field}.crashed={crashed} exceeds faulty={f}; PBFT cannot decide")
    return f


def pbft_messages(n: int) -> int:
    """Messages per decision: (n-1) pre-prepares + (n-1)^2 prepares + n(n-1) commits = 2n(n-1)."""
    return 2 * n * (n - 1)


def _kth(values: FloatArray, k: int) -> FloatArray:
    """k-th smallest (1-based) along the last axis."""
    return np.partition(values, k - 1, axis=-1)[..., k - 1]


def _broadcast(
    start: FloatArray,
    msg_s: float,
    latency_s: float,
    jitter_s: float,
    silent: np.ndarray,
    rng: np.random.Generator,
) -> FloatArray:
    """Arrival times (rounds, sender, receiver) when every sender sends to all others in turn."""
    r, n = start.shape
    idx = np.arange(n)
    order = (idx[None, :] - idx[:, None]) % n  # receiver j is sender i's order-th message
    arr = start[:, :, None] + order[None, :, :] * msg_s + latency_s
    if jitter_s > 0:
        arr = arr + rng.exponential(jitter_s, (r, n, n))
    arr[:, idx, idx] = start  # a replica's own message counts at once
    arr[:, silent, :] = np.inf
    return arr


def pbft_latency(
    n: int,
    block_bytes: FloatArray,
    *,
    faulty: int | None = None,
    crashed: int = 0,
    message_bytes: int = 256,
    rate_bps: float = 1e7,
    latency_s: float = 0.0,
    jitter_s: float = 0.0,
    verify_s: float = 0.0,
    rng: np.random.Generator,
) -> tuple[FloatArray, FloatArray]:
    """Per round: (time until 2f + 1 replicas hold the block, time until the block is final)."""
    f = check_faults(n, faulty, crashed)
    rounds = block_bytes.shape[0]
    silent = np.zeros(n, dtype=bool)
    if crashed:
        silent[n - crashed :] = True
    live = ~silent
    prep_silent = silent.copy()
    prep_silent[0] = True  # the primary sends no prepare
    msg_s = message_bytes * 8.0 / rate_bps
    k = np.arange(n, dtype=np.float64)
    got_block = np.empty(rounds)
    final = np.empty(rounds)
    chunk = max(1, 2_000_000 // (n * n))
    for lo in range(0, rounds, chunk):
        b = block_bytes[lo : lo + chunk]
        r = b.shape[0]
        pp = k[None, :] * (b[:, None] * 8.0 / rate_bps) + latency_s * (k[None, :] > 0)
        if jitter_s > 0:
            pp[:, 1:] += rng.exponential(jitter_s, (r, n - 1))
        ready = pp + verify_s
        if n == 1:
            got_block[lo : lo + r] = pp[:, 0]
            final[lo : lo + r] = ready[:, 0]
            continue
        prep = _broadcast(ready, msg_s, latency_s, jitter_s, prep_silent, rng)
        prepared = ready if f == 0 else np.maximum(ready, _kth(np.swapaxes(prep, 1, 2), 2 * f))
        com = _broadcast(prepared, msg_s, latency_s, jitter_s, silent, rng)
        committed = np.maximum(prepared, _kth(np.swapaxes(com, 1, 2), 2 * f + 1))
        committed[:, silent] = np.inf
        got_block[lo : lo + r] = _kth(pp[:, live], 2 * f + 1)
        final[lo : lo + r] = _kth(committed, 2 * f + 1)
    return got_block, final


class PbftModel:
    """PBFT among the ``num_miners`` replicas; no forks (safety needs f < n/3)."""

    def _latency(
        self, cfg: NetworkConfig, block_bytes: FloatArray, rng: np.random.Generator
    ) -> tuple[FloatArray, FloatArray]:
        p = cfg.pbft
        return pbft_latency(
            cfg.num_miners,
            block_bytes,
            faulty=p.faulty,
            crashed=p.crashed,
            message_bytes=p.message_bytes,
            rate_bps=link_rate(cfg.miner_link),
            latency_s=cfg.miner_link.latency_s,
            jitter_s=p.jitter_s,
            rng=rng,
        )

    def block_phase(
        self, cfg: NetworkConfig, block_bytes: FloatArray, rng: np.random.Generator
    ) -> BlockPhase:
        got, final = self._latency(cfg, block_bytes, rng)
        return BlockPhase(final - got, got, np.zeros(block_bytes.shape[0], dtype=bool))

    def simulate_chain(self, cfg: NetworkConfig, rng: np.random.Generator) -> ChainStats:
        """The primary proposes every 1/block_rate s, or as soon as the previous block is final."""
        sizes = np.full(cfg.blocks, float(cfg.block_bytes))
        got, final = self._latency(cfg, sizes, rng)
        intervals = np.maximum(1.0 / cfg.block_rate, final)
        duration = float(np.sum(intervals))
        capacity = cfg.block_size * cfg.blocks / duration
        producers = np.zeros(cfg.num_miners, dtype=np.int64)
        producers[0] = cfg.blocks
        return ChainStats(
            blocks=cfg.blocks,
            duration_s=duration,
            mean_block_interval_s=float(np.mean(intervals)),
            propagation_delay_s=float(np.mean(got)),
            fork_rate=0.0,
            orphan_rate=0.0,
            tps=capacity if cfg.tx_rate is None else min(cfg.tx_rate, capacity),
            producer_blocks=producers,
        )

    def fork_probability(self, cfg: NetworkConfig, propagation_s: float) -> float:
        return 0.0


CONSENSUS.register("pbft")(PbftModel())
