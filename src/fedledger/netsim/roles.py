"""Roles: each device either trains or mines; how concentrated mining and rewards become.

Miners win blocks in proportion to their compute (PoW hash power ~ FLOP/s); trainers earn a
data reward in proportion to their samples (BlockFL's reward split, Kim et al. 2019).  Raising
the miner share adds hash power but removes training data; letting the compute-rich devices
mine concentrates rewards, measured by the Gini coefficient and the top-k share.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from fedledger.errors import ConfigError
from fedledger.netsim.devices import DevicePopulation


def gini(values: ArrayLike) -> float:
    """Gini coefficient of non-negative values: 0 = equal, (n-1)/n = one holds everything."""
    x = np.sort(np.asarray(values, dtype=np.float64))
    if x.size == 0 or x.sum() == 0:
        return 0.0
    n = x.size
    cum = np.cumsum(x)
    return float((n + 1 - 2.0 * np.sum(cum) / cum[-1]) / n)


def top_share(values: ArrayLike, fraction: float = 0.1) -> float:
    """Share of the total held by the top ``fraction`` of holders (at least one)."""
    x = np.sort(np.asarray(values, dtype=np.float64))[::-1]
    if x.size == 0 or x.sum() == 0:
        return 0.0
    k = max(1, int(round(fraction * x.size)))
    return float(x[:k].sum() / x.sum())


def split_roles(
    pop: DevicePopulation, miner_fraction: float, *, rule: str, rng: np.random.Generator
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """(miners, trainers): the richest in compute mine (``rule="richest"``) or a random set."""
    if not 0.0 < miner_fraction < 1.0:
        raise ConfigError(f"miner_fraction must be in (0, 1), got {miner_fraction}")
    n = len(pop)
    m = max(1, min(n - 1, int(round(miner_fraction * n))))
    if rule == "richest":
        order = np.lexsort((rng.random(n), -pop.flops))
    elif rule == "random":
        order = rng.permutation(n)
    else:
        raise ConfigError(f"role rule must be 'richest' or 'random', got {rule!r}")
    return np.sort(order[:m]), np.sort(order[m:])


@dataclass(frozen=True)
class RoleOutcome:
    miner_fraction: float
    miners: int
    hash_power_flops: float
    training_samples: int
    miner_gini: float
    """Gini of block rewards among the miners."""
    reward_gini: float
    """Gini of total rewards (blocks + data) over all devices."""
    top10_share: float
    """Share of all rewards earned by the top 10% of devices."""
    miner_top10_share: float
    """Share of the blocks won by the top 10% of miners."""


def role_outcome(
    pop: DevicePopulation,
    miner_fraction: float,
    *,
    samples: ArrayLike,
    blocks: int,
    data_reward_share: float = 0.5,
    rule: str = "richest",
    rng: np.random.Generator,
) -> RoleOutcome:
    """Simulate ``blocks`` PoW wins among the miners and pay the data reward to the trainers."""
    miners, trainers = split_roles(pop, miner_fraction, rule=rule, rng=rng)
    n_samples = np.broadcast_to(np.asarray(samples, dtype=np.float64), (len(pop),))
    hp = pop.flops[miners]
    wins = rng.multinomial(blocks, hp / hp.sum())
    reward = np.zeros(len(pop))
    reward[miners] = (1.0 - data_reward_share) * wins / blocks
    data = n_samples[trainers]
    reward[trainers] = data_reward_share * data / data.sum()
    return RoleOutcome(
        miner_fraction=miner_fraction,
        miners=int(miners.size),
        hash_power_flops=float(hp.sum()),
        training_samples=int(data.sum()),
        miner_gini=gini(wins),
        reward_gini=gini(reward),
        top10_share=top_share(reward, 0.1),
        miner_top10_share=top_share(wins, 0.1),
    )
