"""PBFT (Castro & Liskov 1999), PoS and the committee vote."""

from __future__ import annotations

import numpy as np
import pytest

from fedledger.errors import ConfigError
from fedledger.netsim.config import load_network_config
from fedledger.netsim.consensus import CONSENSUS
from fedledger.netsim.consensus.pbft import check_faults, pbft_latency, pbft_messages
from fedledger.netsim.consensus.pos import simulate_slot_chain
from fedledger.netsim.roles import gini


def test_pbft_message_count_is_quadratic() -> None:
    assert pbft_messages(4) == 3 + 9 + 12
    assert [pbft_messages(n) for n in (4, 7, 10)] == [24, 84, 180]


def test_pbft_fault_bound() -> None:
    assert check_faults(4, None) == 1
    assert check_faults(10, None) == 3
    with pytest.raises(ConfigError, match="f < n/3"):
        check_faults(9, 3)


def test_pbft_latency_by_hand_without_jitter() -> None:
    # n = 4, f = 1: block 1 Mbit at 10 Mbit/s (0.1 s per copy), messages 0.001 s, latency 0.01 s.
    got, final = pbft_latency(
        4, np.array([125_000.0]), message_bytes=1250, rate_bps=1e7, latency_s=0.01,
        rng=np.random.default_rng(0),
    )  # fmt: skip
    # replica k holds the pre-prepare at 0.1 k + 0.01; 3 (= 2f + 1) replicas hold it by 0.21
    assert got[0] == pytest.approx(0.21)
    assert final[0] > got[0]
    assert final[0] < 0.4


def test_pbft_latency_grows_with_committee_and_survives_f_crashes() -> None:
    sizes = np.full(50, 1e5)
    means = [
        pbft_latency(
            n, sizes, rate_bps=1e7, latency_s=0.02, jitter_s=0.01, rng=np.random.default_rng(1)
        )[1].mean()
        for n in (4, 10, 22, 49)
    ]
    assert all(np.diff(means) > 0)
    _, crashed = pbft_latency(
        7,
        sizes,
        crashed=2,
        rate_bps=1e7,
        latency_s=0.02,
        jitter_s=0.01,
        rng=np.random.default_rng(1),
    )
    assert np.all(np.isfinite(crashed))


def test_pbft_round_phase_has_no_forks() -> None:
    cfg = load_network_config({"consensus": "pbft", "num_miners": 7})
    ph = CONSENSUS.get("pbft").block_phase(cfg, np.full(10, 1e6), np.random.default_rng(0))
    assert not ph.forked.any() and np.all(ph.block_s > 0) and np.all(ph.propagation_s > 0)
    stats = CONSENSUS.get("pbft").simulate_chain(
        cfg.model_copy(update={"blocks": 200}), np.random.default_rng(0)
    )
    assert stats.fork_rate == 0.0 and stats.mean_block_interval_s >= 1.0 / cfg.block_rate


def test_pos_proposers_follow_stake() -> None:
    stakes = [0.6, 0.3, 0.1]
    stats = simulate_slot_chain(
        2.0, stakes, num_blocks=20_000, block_size=100, block_bytes_delay_s=0.5, tx_rate=None,
        rng=np.random.default_rng(0),
    )  # fmt: skip
    share = stats.producer_blocks / stats.producer_blocks.sum()
    assert share == pytest.approx(stakes, abs=0.02)
    assert stats.fork_rate == 0.0 and stats.mean_block_interval_s == 2.0
    assert stats.tps == pytest.approx(50.0)
    assert gini(stats.producer_blocks) > 0.3


def test_pos_forks_when_propagation_exceeds_slot() -> None:
    model = CONSENSUS.get("pos")
    cfg = load_network_config({"consensus": "pos", "block_rate": 2.0, "blocks": 20_000})
    stats = model.simulate_chain(cfg, np.random.default_rng(0))  # 2 MB block, 1.2 s > 0.5 s slots
    assert stats.fork_rate == pytest.approx(
        model.fork_probability(cfg, stats.propagation_delay_s), rel=0.05
    )


def test_committee_needs_a_majority() -> None:
    cfg = load_network_config(
        {"consensus": "committee", "committee": {"size": 5, "jitter_s": 1.0}, "block_rate": 100.0}
    )
    model = CONSENSUS.get("committee")
    ph = model.block_phase(cfg, np.full(4_000, 80.0 + 10 * 20_000), np.random.default_rng(0))
    assert not ph.forked.any()
    # the 3rd of 5 exponential(1 s) jitters has mean 1/5 + 1/4 + 1/3 = 0.783 s
    fixed = ph.block_s - 0.783
    assert 0.0 < float(np.mean(fixed)) < 0.2
