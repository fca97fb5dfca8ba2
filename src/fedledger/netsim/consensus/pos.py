"""Proof of stake: one proposer per slot, drawn with probability proportional to stake.

Slots last tau = 1 / block_rate.  A proposer builds on the previous block only if it has
arrived (propagation T_bp < tau) or if it proposed that block itself; otherwise the slot forks.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fedledger.netsim.channel import link_delay
from fedledger.netsim.config import NetworkConfig
from fedledger.netsim.consensus.base import CONSENSUS, BlockPhase, ChainStats, FloatArray


def slot_fork_probability(slot_s: float, shares: Sequence[float], propagation_s: float) -> float:
    """P(the next slot's proposer has not yet seen the block and is someone else)."""
    s = np.asarray(shares, dtype=np.float64)
    return float((1.0 - np.sum(s * s)) * (propagation_s > slot_s))


def simulate_slot_chain(
    slot_s: float,
    shares: Sequence[float],
    *,
    num_blocks: int,
    block_size: int,
    block_bytes_delay_s: float,
    tx_rate: float | None,
    rng: np.random.Generator,
) -> ChainStats:
    """Slot-based chain (PoS, PoA, committee): one block per slot, stake-weighted proposers."""
    s = np.asarray(shares, dtype=np.float64)
    proposers = rng.choice(s.size, size=num_blocks, p=s)
    late = block_bytes_delay_s > slot_s
    forked = np.zeros(num_blocks, dtype=bool)
    if late:
        forked[1:] = proposers[1:] != proposers[:-1]
    orphan = np.zeros(num_blocks, dtype=bool)
    orphan[:-1] = forked[1:]  # the block the next proposer had not seen is abandoned
    duration = num_blocks * slot_s
    capacity = block_size * float(np.sum(~orphan)) / duration
    tps = capacity if tx_rate is None else min(tx_rate, capacity)
    kept = np.bincount(proposers[~orphan], minlength=s.size).astype(np.int64)
    return ChainStats(
        blocks=num_blocks,
        duration_s=duration,
        mean_block_interval_s=slot_s,
        propagation_delay_s=block_bytes_delay_s,
        fork_rate=float(np.mean(forked)),
        orphan_rate=float(np.mean(orphan)),
        tps=tps,
        producer_blocks=kept,
    )


class PosModel:
    """Stake-weighted proposer per slot; the round waits for the next slot boundary."""

    def proposer_shares(self, cfg: NetworkConfig) -> Sequence[float]:
        """Probability of each proposer to seal a slot: the miners' stakes."""
        return cfg.shares

    def block_phase(
        self, cfg: NetworkConfig, block_bytes: FloatArray, rng: np.random.Generator
    ) -> BlockPhase:
        slot = 1.0 / cfg.block_rate
        n = block_bytes.shape[0]
        prop = link_delay(cfg.miner_link, block_bytes)
        wait = np.asarray(rng.uniform(0.0, slot, n), dtype=np.float64)
        s = np.asarray(self.proposer_shares(cfg))
        same = np.asarray(rng.choice(s.size, n, p=s) == rng.choice(s.size, n, p=s), dtype=bool)
        return BlockPhase(wait, prop, np.asarray((prop > slot) & ~same, dtype=bool))

    def simulate_chain(self, cfg: NetworkConfig, rng: np.random.Generator) -> ChainStats:
        return simulate_slot_chain(
            1.0 / cfg.block_rate,
            self.proposer_shares(cfg),
            num_blocks=cfg.blocks,
            block_size=cfg.block_size,
            block_bytes_delay_s=float(link_delay(cfg.miner_link, cfg.block_bytes)),
            tx_rate=cfg.tx_rate,
            rng=rng,
        )

    def fork_probability(self, cfg: NetworkConfig, propagation_s: float) -> float:
        return slot_fork_probability(1.0 / cfg.block_rate, self.proposer_shares(cfg), propagation_s)


CONSENSUS.register("pos")(PosModel())
