"""What a consensus model provides: a per-round block phase, a chain simulation, a fork model."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from fedledger.netsim.config import NetworkConfig
from fedledger.registry import Registry

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class BlockPhase:
    """One attempt to commit a block, per round (arrays of equal length).

    block_s: time from the start of consensus until the block exists (mining race, voting).
    propagation_s: time to spread the block to the other miners.
    forked: whether another block appeared during propagation (PoW only).
    """

    block_s: FloatArray
    propagation_s: FloatArray
    forked: NDArray[np.bool_]


@dataclass(frozen=True)
class ChainStats:
    """Long-run behaviour of a chain over many blocks."""

    blocks: int
    duration_s: float
    mean_block_interval_s: float
    propagation_delay_s: float
    fork_rate: float
    """Share of blocks during whose propagation another miner's block appeared (BlockFL's event)."""
    orphan_rate: float
    tps: float
    mean_queue_len: float = float("nan")
    max_queue_len: float = float("nan")
    tree_fork_rate: float = float("nan")
    """Share of blocks mined on a parent that already had a child (a branch in the block tree)."""
    producer_blocks: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    """Blocks on the final main chain per miner/proposer (reward concentration)."""


class ConsensusModel(Protocol):
    def block_phase(
        self, cfg: NetworkConfig, block_bytes: FloatArray, rng: np.random.Generator
    ) -> BlockPhase: ...

    def simulate_chain(self, cfg: NetworkConfig, rng: np.random.Generator) -> ChainStats: ...

    def fork_probability(self, cfg: NetworkConfig, propagation_s: float) -> float: ...


CONSENSUS: Registry[ConsensusModel] = Registry("consensus")
