"""Layered chains: regional chains aggregate their devices and anchor into the main chain.

A discrete-event model (SimPy).  Flat: every device's update is a transaction on the main PoW
chain.  Layered with R regions: each region's updates go to its own PoW chain (faster local
links, its own block rate); once a region's updates are all confirmed, one small anchor
transaction (the regional aggregate's hash) goes to the main chain.  A round ends when every
update (flat) or every anchor (layered) is confirmed.  A chain mines at rate lambda, takes up
to ``block_size`` waiting transactions, and propagates the block; when another miner finds a
block meanwhile (BlockFL's fork event) the block is orphaned and its transactions re-queued.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass

import numpy as np
import simpy

from fedledger.netsim.channel import link_delay
from fedledger.netsim.config import LinkConfig, NetworkConfig
from fedledger.netsim.devices import DevicePopulation, expected_round_trip


@dataclass(frozen=True)
class ChainParams:
    rate: float
    block_size: int
    header_bytes: int
    link: LinkConfig
    num_miners: int


class _Chain:
    """A PoW chain with a FIFO mempool of (bytes, on_confirm) transactions."""

    def __init__(self, env: simpy.Environment, p: ChainParams, rng: np.random.Generator) -> None:
        self.env, self.p, self.rng = env, p, rng
        self.pool: list[tuple[float, Callable[[], None]]] = []
        self.blocks = 0
        self.forks = 0
        env.process(self._mine())

    def submit(self, num_bytes: float, on_confirm: Callable[[], None]) -> None:
        self.pool.append((num_bytes, on_confirm))

    def _mine(self) -> Generator[simpy.Event, None, None]:
        p = self.p
        others = p.rate * (1.0 - 1.0 / p.num_miners)
        while True:
            yield self.env.timeout(self.rng.exponential(1.0 / p.rate))
            txs, self.pool = self.pool[: p.block_size], self.pool[p.block_size :]
            self.blocks += 1
            delay = float(link_delay(p.link, p.header_bytes + sum(b for b, _ in txs)))
            if others > 0 and self.rng.exponential(1.0 / others) < delay:
                self.forks += 1
                self.pool = txs + self.pool  # orphaned: back to the front of the queue
                continue
            self.env.process(self._confirm(txs, delay))

    def _confirm(
        self, txs: list[tuple[float, Callable[[], None]]], delay: float
    ) -> Generator[simpy.Event, None, None]:
        yield self.env.timeout(delay)
        for _, done in txs:
            done()


@dataclass(frozen=True)
class LayeredResult:
    regions: int
    round_latency_s: float
    updates_per_s: float
    main_chain_tx: int
    fork_rate: float


def _round(
    upload_s: np.ndarray,
    region_of: np.ndarray,
    regions: int,
    update_bytes: float,
    main: ChainParams,
    regional: ChainParams | None,
    anchor_bytes: float,
    rng: np.random.Generator,
) -> tuple[float, int, float]:
    env = simpy.Environment()
    main_chain = _Chain(env, main, rng)
    finished = env.event()
    chains = [_Chain(env, regional, rng) for _ in range(regions)] if regional else []
    left_region = np.bincount(region_of, minlength=regions).tolist()
    state = {"left": regions if regional else upload_s.size, "main_tx": 0}

    def main_done() -> None:
        state["left"] -= 1
        if state["left"] == 0 and not finished.triggered:
            finished.succeed(env.now)

    def region_done(r: int) -> Callable[[], None]:
        def cb() -> None:
            left_region[r] -= 1
            if left_region[r] == 0:
                state["main_tx"] += 1
                main_chain.submit(anchor_bytes, main_done)

        return cb

    def uploads() -> Generator[simpy.Event, None, None]:
        order = np.argsort(upload_s, kind="stable")
        now = 0.0
        for i in order.tolist():
            yield env.timeout(float(upload_s[i]) - now)
            now = float(upload_s[i])
            if regional:
                chains[int(region_of[i])].submit(update_bytes, region_done(int(region_of[i])))
            else:
                state["main_tx"] += 1
                main_chain.submit(update_bytes, main_done)

    env.process(uploads())
    env.run(until=finished)
    all_chains = [main_chain, *chains]
    blocks = sum(c.blocks for c in all_chains)
    return float(env.now), state["main_tx"], sum(c.forks for c in all_chains) / max(1, blocks)


def compare_layered(
    cfg: NetworkConfig,
    pop: DevicePopulation,
    regions: list[int],
    *,
    rounds: int,
    rng: np.random.Generator,
) -> list[LayeredResult]:
    """Round latency and update throughput of a flat chain (regions=1 means flat) vs layered."""
    h = cfg.hierarchy
    ready = expected_round_trip(
        pop, cfg, cfg.update_bytes, cfg.flops_per_sample, cfg.samples_per_device, cfg.local_epochs
    )
    main = ChainParams(
        cfg.block_rate, cfg.block_size, cfg.header_bytes, cfg.miner_link, cfg.num_miners
    )
    regional = ChainParams(
        h.regional_block_rate, cfg.block_size, cfg.header_bytes, h.regional_link, cfg.num_miners
    )
    out = []
    for r in regions:
        region_of = np.arange(len(pop)) % r
        lat, forks, main_tx = [], [], 0
        for _ in range(rounds):
            t, main_tx, fr = _round(
                ready,
                region_of,
                r,
                float(cfg.update_bytes),
                main,
                regional if r > 1 else None,
                float(h.anchor_bytes),
                rng,
            )
            lat.append(t)
            forks.append(fr)
        mean = float(np.mean(lat))
        out.append(LayeredResult(r, mean, len(pop) / mean, main_tx, float(np.mean(forks))))
    return out
