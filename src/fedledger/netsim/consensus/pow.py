"""Proof of work: exponential block races, propagation delay, forks, longest-chain resolution.

Miner j finds blocks at rate lambda * s_j (hash-power share s_j), so blocks arrive network-wide
as a Poisson process of rate lambda.  A block of B bytes reaches the other miners after
T_bp = hops * (8B / R + latency).  A fork occurs when another miner finds a block during
that time; its probability (BlockFL, Kim et al. 2019, Sec. III, generalised to unequal
shares) is p_fork = 1 - sum_j s_j exp(-lambda (1 - s_j) T_bp).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fedledger.netsim.channel import link_delay, link_rate
from fedledger.netsim.config import NetworkConfig
from fedledger.netsim.consensus.base import CONSENSUS, BlockPhase, ChainStats, FloatArray


def fork_probability(rate: float, shares: Sequence[float], propagation_s: float) -> float:
    """P(another miner finds a block while the winner's block propagates), BlockFL's p_fork."""
    s = np.asarray(shares, dtype=np.float64)
    return float(1.0 - np.sum(s * np.exp(-rate * (1.0 - s) * propagation_s)))


def race(
    rate: float, shares: Sequence[float], propagation_s: FloatArray, rng: np.random.Generator
) -> BlockPhase:
    """One mining race per entry of ``propagation_s``: winner's time and whether it forks."""
    s = np.asarray(shares, dtype=np.float64)
    n = propagation_s.shape[0]
    if s.size == 1:
        first = np.asarray(rng.exponential(1.0 / rate, n), dtype=np.float64)
        return BlockPhase(first, propagation_s, np.zeros(n, dtype=bool))
    times = rng.standard_exponential((n, s.size)) / (rate * s)
    first_two = np.partition(times, 1, axis=1)[:, :2]
    forked = first_two[:, 1] < first_two[:, 0] + propagation_s
    return BlockPhase(first_two[:, 0], propagation_s, forked)


def interrupted_share(times: FloatArray, miners: np.ndarray, delays: FloatArray) -> float:
    """Share of blocks during whose propagation another miner found a block (the fork event)."""
    n = times.shape[0]
    change = np.flatnonzero(miners[1:] != miners[:-1]) + 1  # first block of each new run
    run_end = np.searchsorted(change, np.arange(n), side="right")
    nxt = np.append(change, n)[run_end]  # first later block by a different miner
    has = nxt < n
    hit = np.zeros(n, dtype=bool)
    hit[has] = times[nxt[has]] < times[has] + delays[has]
    return float(np.mean(hit))


def simulate_pow_chain(
    rate: float,
    shares: Sequence[float],
    *,
    num_blocks: int,
    block_size: int,
    tx_bytes: int,
    header_bytes: int,
    bytes_to_delay: float,
    fixed_delay_s: float,
    tx_rate: float | None,
    confirmations: int,
    rng: np.random.Generator,
) -> ChainStats:
    """Event-by-event PoW block tree over ``num_blocks`` blocks.

    Each miner extends the longest chain it has seen (ties: the block it saw first); its own
    blocks it sees at once, others' after their propagation delay
    ``fixed_delay_s + bytes_to_delay * size``.  A block whose parent already has a child is a
    branch (``tree_fork_rate``); a block during whose propagation another miner finds a block
    is interrupted (``fork_rate``, the event of BlockFL's p_fork).  A height is decided once
    the best chain is ``confirmations`` blocks past it; blocks off the best chain there are
    orphans and their transactions go back to the mempool.
    """
    s = np.asarray(shares, dtype=np.float64)
    gaps = rng.exponential(1.0 / rate, num_blocks)
    times = np.cumsum(gaps)
    miners = (
        rng.choice(s.size, size=num_blocks, p=s) if s.size > 1 else np.zeros(num_blocks, np.int64)
    )
    saturated = tx_rate is None
    arrivals = np.zeros(num_blocks, np.int64) if tx_rate is None else rng.poisson(tx_rate * gaps)
    t_l, m_l = times.tolist(), miners.tolist()
    arr_l = arrivals.tolist()
    height: list[int] = []
    parent: list[int] = []
    nchild: list[int] = []
    ntx: list[int] = []
    seen_all: list[float] = []
    unsettled: list[int] = []
    settled_top: list[int] = []
    pending: dict[int, list[int]] = {}
    genesis_children = 0
    best, decided = -1, 0
    queue, forks, orphans, confirmed_tx = 0, 0, 0, 0
    producers = np.zeros(s.size, dtype=np.int64)
    queue_trace = np.zeros(num_blocks)
    delays = np.zeros(num_blocks)

    def decide(h: int, anc: int) -> None:
        nonlocal queue, orphans, confirmed_tx
        for j in pending.pop(h, []):
            if j == anc:
                confirmed_tx += ntx[j]
                producers[m_l[j]] += 1
            else:
                orphans += 1
                queue += ntx[j]

    def ancestor(j: int, h: int) -> int:
        while height[j] > h:
            j = parent[j]
        return j

    for i in range(num_blocks):
        t, m = t_l[i], m_l[i]
        # settle blocks every miner has seen by now
        keep = []
        for j in unsettled:
            if seen_all[j] <= t:
                top_h = height[settled_top[0]] if settled_top else -1
                if height[j] > top_h:
                    settled_top = [j]
                elif height[j] == top_h:
                    settled_top.append(j)
            else:
                keep.append(j)
        unsettled = keep
        # the tip in miner m's view: longest chain, ties broken by the earlier sighting
        tip, tip_h, tip_seen = -1, 0, 0.0
        for j in settled_top + unsettled:
            seen = t_l[j] if m_l[j] == m else seen_all[j]
            if seen <= t and (height[j] > tip_h or (height[j] == tip_h and seen < tip_seen)):
                tip, tip_h, tip_seen = j, height[j], seen
        if tip < 0:
            forks += genesis_children > 0
            genesis_children += 1
        else:
            forks += nchild[tip] > 0
            nchild[tip] += 1
        queue += arr_l[i]
        n_tx = block_size if saturated else min(queue, block_size)
        queue -= n_tx
        d = fixed_delay_s + bytes_to_delay * (header_bytes + n_tx * tx_bytes)
        delays[i] = d
        height.append(tip_h + 1)
        parent.append(tip)
        nchild.append(0)
        ntx.append(n_tx)
        seen_all.append(t + d)
        unsettled.append(i)
        if tip_h + 1 <= decided:  # extends a branch that already lost
            orphans += 1
            queue += n_tx
        else:
            pending.setdefault(tip_h + 1, []).append(i)
        if best < 0 or tip_h + 1 > height[best]:
            best = i
        while decided < height[best] - confirmations:
            decided += 1
            decide(decided, ancestor(best, decided))
        queue_trace[i] = queue
    while decided < height[best]:
        decided += 1
        decide(decided, ancestor(best, decided))
    duration = float(times[-1])
    return ChainStats(
        blocks=num_blocks,
        duration_s=duration,
        mean_block_interval_s=float(np.mean(gaps)),
        propagation_delay_s=float(np.mean(delays)),
        fork_rate=interrupted_share(times, miners, delays),
        orphan_rate=orphans / num_blocks,
        tree_fork_rate=forks / num_blocks,
        tps=confirmed_tx / duration,
        mean_queue_len=float("nan") if saturated else float(np.mean(queue_trace)),
        max_queue_len=float("nan") if saturated else float(np.max(queue_trace)),
        producer_blocks=producers,
    )


class PowModel:
    """PoW as used by BlockFL: the round's block is mined by a race and may fork."""

    def block_phase(
        self, cfg: NetworkConfig, block_bytes: FloatArray, rng: np.random.Generator
    ) -> BlockPhase:
        return race(cfg.block_rate, cfg.shares, link_delay(cfg.miner_link, block_bytes), rng)

    def simulate_chain(self, cfg: NetworkConfig, rng: np.random.Generator) -> ChainStats:
        link = cfg.miner_link
        return simulate_pow_chain(
            cfg.block_rate,
            cfg.shares,
            num_blocks=cfg.blocks,
            block_size=cfg.block_size,
            tx_bytes=cfg.chain_tx_bytes,
            header_bytes=cfg.header_bytes,
            bytes_to_delay=link.hops * 8.0 / link_rate(link),
            fixed_delay_s=link.hops * link.latency_s,
            tx_rate=cfg.tx_rate,
            confirmations=cfg.confirmations,
            rng=rng,
        )

    def fork_probability(self, cfg: NetworkConfig, propagation_s: float) -> float:
        return fork_probability(cfg.block_rate, cfg.shares, propagation_s)


CONSENSUS.register("pow")(PowModel())
