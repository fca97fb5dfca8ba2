"""The engine's committee vote: members fetch and score the round's updates, then vote on-chain.

A committee of c members each downloads the block's updates, scores them, and sends a vote
transaction; the decision needs a majority (c // 2 + 1 votes) and is sealed in the next slot
of a proof-of-authority chain (one block every 1/block_rate s).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fedledger.netsim.channel import link_delay
from fedledger.netsim.config import NetworkConfig
from fedledger.netsim.consensus.base import CONSENSUS, BlockPhase, FloatArray
from fedledger.netsim.consensus.pos import PosModel


def committee_latency(
    cfg: NetworkConfig, block_bytes: FloatArray, rng: np.random.Generator
) -> FloatArray:
    """Time until a majority of the committee has voted (fetch + score + vote transfer)."""
    c = cfg.committee
    rounds = block_bytes.shape[0]
    updates = np.maximum(block_bytes - cfg.header_bytes, 0.0) / cfg.update_bytes
    fetch = link_delay(cfg.miner_link, block_bytes)[:, None] * np.ones((1, c.size))
    score = (updates * c.score_flops_per_update / cfg.miner_flops)[:, None]
    vote = link_delay(cfg.miner_link, float(c.vote_bytes))
    arrive = fetch + score + vote
    if c.jitter_s > 0:
        arrive = arrive + rng.exponential(c.jitter_s, (rounds, c.size))
    quorum = c.size // 2 + 1
    return np.asarray(np.partition(arrive, quorum - 1, axis=1)[:, quorum - 1], dtype=np.float64)


class CommitteeModel(PosModel):
    """Majority vote of a committee, sealed in a proof-of-authority slot (forks if T_bp > slot).

    The chain and its forks are PoS's slot chain with the committee members as equal proposers.
    """

    def proposer_shares(self, cfg: NetworkConfig) -> Sequence[float]:
        size = min(cfg.committee.size, cfg.num_miners)
        return [1.0 / size] * size

    def block_phase(
        self, cfg: NetworkConfig, block_bytes: FloatArray, rng: np.random.Generator
    ) -> BlockPhase:
        vote = committee_latency(cfg, block_bytes, rng)
        slot = rng.uniform(0.0, 1.0 / cfg.block_rate, block_bytes.shape[0])
        seal = link_delay(
            cfg.miner_link, cfg.header_bytes + cfg.committee.size * cfg.committee.vote_bytes
        )
        prop = np.full(block_bytes.shape[0], float(seal))
        return BlockPhase(vote + slot, prop, np.zeros(block_bytes.shape[0], dtype=bool))


CONSENSUS.register("committee")(CommitteeModel())
