"""BlockFL's latency model (Kim et al. 2019) against the round simulator.

Acceptance (issue 4): round latency within 5% of the analytic model where its assumptions hold
(homogeneous devices, no fading, equal miners); latency against block arrival rate is
U-shaped and the simulated optimum lies within 10% of the analytic optimum.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from fedledger.cli.netsim import read_network_section
from fedledger.netsim.analysis import (
    BlockFLTerms,
    blockfl_latency,
    blockfl_optimal_rate,
    blockfl_terms,
    empirical_minimum,
    golden_min,
)
from fedledger.netsim.config import NetworkConfig, load_network_config
from fedledger.netsim.devices import DevicePopulation, build_population
from fedledger.netsim.rounds import simulate_rounds

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "netsim_blockfl.toml"


def setting(**over: object) -> tuple[NetworkConfig, int]:
    section, seed = read_network_section(EXAMPLE)
    return load_network_config({**section, **over}), seed


def mean_latency(cfg: NetworkConfig, pop: DevicePopulation, seed: int, rounds: int) -> float:
    batch = simulate_rounds(
        cfg,
        pop,
        list(range(cfg.num_devices)),
        rounds=rounds,
        update_bytes=float(cfg.update_bytes),
        flops_per_sample=cfg.flops_per_sample,
        samples=cfg.samples_per_device,
        epochs=cfg.local_epochs,
        rng=np.random.default_rng([seed, 2]),
    )
    return float(np.mean(batch.round_s))


def terms_of(cfg: NetworkConfig, pop: DevicePopulation) -> BlockFLTerms:
    return blockfl_terms(
        cfg,
        pop,
        list(range(cfg.num_devices)),
        update_bytes=float(cfg.update_bytes),
        flops_per_sample=cfg.flops_per_sample,
        samples=cfg.samples_per_device,
        epochs=cfg.local_epochs,
    )


def simulate(cfg: NetworkConfig, seed: int, rounds: int) -> tuple[float, float]:
    pop = build_population(cfg, np.random.default_rng([seed, 0]))
    return mean_latency(cfg, pop, seed, rounds), blockfl_latency(cfg.block_rate, terms_of(cfg, pop))


@pytest.mark.parametrize("rate", [0.1, 0.5, 1.5])
@pytest.mark.parametrize("policy", ["repeat_round", "remine"])
def test_round_latency_within_5_percent(rate: float, policy: str) -> None:
    cfg, seed = setting(block_rate=rate, fork_policy=policy)
    sim, ana = simulate(cfg, seed, 5_000)
    assert abs(sim / ana - 1.0) < 0.05


def test_multi_block_rounds_match_analysis() -> None:
    cfg, seed = setting(block_size=30, block_rate=0.8)  # 100 updates -> 4 blocks per round
    sim, ana = simulate(cfg, seed, 5_000)
    assert abs(sim / ana - 1.0) < 0.05


def test_closed_form_optimum_matches_numerical_minimum() -> None:
    terms = BlockFLTerms(0.5, 0.2, 1.0, (1.2,), 0.1, (0.1,) * 10)
    closed = blockfl_optimal_rate(terms)
    numeric = golden_min(lambda r: blockfl_latency(r, terms), (1e-3, 1e3))
    assert closed == pytest.approx(numeric, rel=1e-5)
    c, a = 0.9 * 1.2, 0.5 + 0.2 + 1.0 + 1.2
    assert c * a * closed**2 + c * closed - 1.0 == pytest.approx(0.0, abs=1e-12)
    assert math.isinf(blockfl_optimal_rate(BlockFLTerms(0.5, 0.2, 1.0, (1.2,), 0.1, (1.0,))))


def test_unequal_shares_optimum_is_numerical() -> None:
    terms = BlockFLTerms(0.5, 0.2, 1.0, (1.2,), 0.1, (0.7, 0.1, 0.1, 0.1))
    best = blockfl_optimal_rate(terms)
    for r in (best * 0.9, best * 1.1):
        assert blockfl_latency(r, terms) > blockfl_latency(best, terms)


def test_latency_is_u_shaped_and_simulated_optimum_within_10_percent() -> None:
    cfg, seed = setting()
    pop = build_population(cfg, np.random.default_rng([seed, 0]))
    analytic_opt = blockfl_optimal_rate(terms_of(cfg, pop))
    rates = np.geomspace(0.1, 2.0, 27)
    sim = [
        mean_latency(cfg.model_copy(update={"block_rate": float(r)}), pop, seed, 20_000)
        for r in rates
    ]
    i = int(np.argmin(sim))
    assert 0 < i < len(rates) - 1
    assert sim[0] > 1.5 * sim[i] and sim[-1] > 1.5 * sim[i]  # a U, not a slope
    assert all(np.diff(sim[: i - 3]) < 0) and all(np.diff(sim[i + 4 :]) > 0)
    assert abs(empirical_minimum(rates, sim) / analytic_opt - 1.0) < 0.10


def test_empirical_minimum_refines_between_grid_points() -> None:
    x = np.geomspace(0.1, 10, 21)
    y = (np.log(x) - np.log(1.3)) ** 2
    assert empirical_minimum(x, y) == pytest.approx(1.3, rel=1e-6)
