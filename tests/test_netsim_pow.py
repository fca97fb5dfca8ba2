"""PoW chain against analysis: block interval, fork rate, TPS, orphaned tx re-queued.

Acceptance (issue 4): mean block interval within 2% of 1/lambda; fork rate within 10% of the
analytic value over >= 10,000 blocks.  Seeds are fixed; tolerances are >= 4 standard errors.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fedledger.cli.netsim import read_network_section
from fedledger.netsim.config import NetworkConfig, load_network_config
from fedledger.netsim.consensus import CONSENSUS
from fedledger.netsim.consensus.pow import fork_probability, interrupted_share, simulate_pow_chain

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "netsim_blockfl.toml"


def example(**over: object) -> tuple[NetworkConfig, int]:
    section, seed = read_network_section(EXAMPLE)
    return load_network_config({**section, **over}), seed


@pytest.mark.parametrize("rate", [0.05, 0.5, 2.0])
def test_mean_block_interval_within_2_percent(rate: float) -> None:
    cfg, seed = example(block_rate=rate, blocks=50_000)
    stats = CONSENSUS.get("pow").simulate_chain(cfg, np.random.default_rng([seed, 1]))
    assert stats.blocks >= 10_000
    assert abs(stats.mean_block_interval_s * rate - 1.0) < 0.02


@pytest.mark.parametrize("rate", [0.1, 0.5, 1.0])
def test_fork_rate_within_10_percent_of_analytic(rate: float) -> None:
    cfg, seed = example(block_rate=rate, blocks=20_000)
    model = CONSENSUS.get("pow")
    stats = model.simulate_chain(cfg, np.random.default_rng([seed, 1]))
    analytic = model.fork_probability(cfg, stats.propagation_delay_s)
    assert abs(stats.fork_rate / analytic - 1.0) < 0.10
    # the block tree: branches and orphans never exceed the interrupted blocks
    assert stats.tree_fork_rate <= stats.fork_rate + 1e-12
    assert 0.0 < stats.orphan_rate <= stats.fork_rate + 0.01


def test_unequal_hash_power_fork_rate() -> None:
    shares = [0.5, 0.3, 0.1, 0.1]
    stats = simulate_pow_chain(
        1.0, shares, num_blocks=20_000, block_size=10, tx_bytes=100, header_bytes=0,
        bytes_to_delay=0.3 / 1000, fixed_delay_s=0.0, tx_rate=None, confirmations=2,
        rng=np.random.default_rng(3),
    )  # fmt: skip
    assert abs(stats.fork_rate / fork_probability(1.0, shares, 0.3) - 1.0) < 0.10
    # the biggest miner wins about half of the main-chain blocks
    assert 0.45 < stats.producer_blocks[0] / stats.producer_blocks.sum() < 0.6


def test_single_miner_never_forks() -> None:
    assert fork_probability(1.0, [1.0], 10.0) == 0.0
    stats = simulate_pow_chain(
        1.0, [1.0], num_blocks=2_000, block_size=10, tx_bytes=100, header_bytes=0,
        bytes_to_delay=0.01, fixed_delay_s=1.0, tx_rate=None, confirmations=2,
        rng=np.random.default_rng(0),
    )  # fmt: skip
    assert stats.fork_rate == stats.orphan_rate == stats.tree_fork_rate == 0.0


def test_interrupted_share_by_hand() -> None:
    times = np.array([0.0, 0.5, 0.6, 3.0, 3.1])
    miners = np.array([0, 0, 1, 1, 0])
    delays = np.full(5, 1.0)
    # block 0: next other-miner block at 0.6 < 1.0 -> hit; 1: 0.6 < 1.5 -> hit; 2: 3.1 > 1.6;
    # 3: 3.1 < 4.0 -> hit; 4: none after it
    assert interrupted_share(times, miners, delays) == pytest.approx(3 / 5)


def test_saturated_tps_counts_main_chain_blocks() -> None:
    cfg, seed = example(block_rate=0.5, blocks=20_000)
    stats = CONSENSUS.get("pow").simulate_chain(cfg, np.random.default_rng([seed, 1]))
    main_blocks = stats.producer_blocks.sum()
    assert main_blocks == round(stats.blocks * (1.0 - stats.orphan_rate))
    assert stats.tps == pytest.approx(main_blocks * cfg.block_size / stats.duration_s)


def test_orphaned_transactions_are_requeued_and_confirmed() -> None:
    # heavy forking (~45% of blocks interrupted), load at half the capacity: if orphaned
    # transactions were lost, TPS would fall well below the arrival rate
    cfg = load_network_config(
        {"block_rate": 1.0, "block_size": 100, "tx_bytes": 2000, "tx_rate": 50.0, "blocks": 20_000,
         "miner_link": {"bandwidth_hz": 1e6, "snr_db": 20.0}}
    )  # fmt: skip
    stats = CONSENSUS.get("pow").simulate_chain(cfg, np.random.default_rng(5))
    assert stats.orphan_rate > 0.05
    assert stats.tps == pytest.approx(50.0, rel=0.03)
    assert np.isfinite(stats.mean_queue_len) and stats.max_queue_len < 1_000


def test_tps_grows_with_block_size_and_falls_with_interval() -> None:
    base = {"tx_bytes": 250, "blocks": 5_000}
    tps_size = [
        CONSENSUS.get("pow")
        .simulate_chain(load_network_config({**base, "block_size": b}), np.random.default_rng(0))
        .tps
        for b in (50, 200, 800)
    ]
    assert tps_size[0] < tps_size[1] < tps_size[2]
    tps_rate = [
        CONSENSUS.get("pow")
        .simulate_chain(load_network_config({**base, "block_rate": r}), np.random.default_rng(0))
        .tps
        for r in (0.1, 0.2, 0.4)  # intervals 10 s, 5 s, 2.5 s
    ]
    assert tps_rate[0] < tps_rate[1] < tps_rate[2]
