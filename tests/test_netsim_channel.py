"""AWGN channel: Shannon rate, path loss, fading, frames with errors and retransmissions."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from fedledger.netsim.channel import (
    db_to_linear,
    dbm_to_watt,
    expected_transmissions,
    fading_power,
    link_delay,
    mean_snr,
    path_gain,
    shannon_rate,
    transfer_time,
)
from fedledger.netsim.config import ChannelConfig, LinkConfig


def test_units() -> None:
    assert db_to_linear(10.0) == 10.0
    assert math.isclose(float(dbm_to_watt(30.0)), 1.0)
    assert math.isclose(float(shannon_rate(1e6, 1.0)), 1e6)  # B log2(1 + 1)


def test_path_loss_models() -> None:
    assert math.isclose(float(path_gain(10.0, 2.0, model="exponent")), 0.01)
    # log-distance: 30 dB at 1 m plus 10 n log10(d) -> 30 + 30 = 60 dB at 10 m for n = 3
    assert math.isclose(float(path_gain(10.0, 3.0, reference_loss_db=30.0)), 1e-6)


def test_snr_from_budget_and_override() -> None:
    ch = ChannelConfig(bandwidth_hz=1e6, tx_power_dbm=23.0, noise_psd_dbm_hz=-174.0)
    snr = float(mean_snr(ch, 50.0))
    # 23 dBm - (30 + 30 log10 50) dB - (-174 + 60) dBm = 23 - 80.97 + 114
    assert math.isclose(10 * math.log10(snr), 23 - (30 + 30 * math.log10(50)) + 114, abs_tol=1e-9)
    fixed = ChannelConfig(snr_db=10.0)
    assert np.allclose(mean_snr(fixed, np.array([1.0, 500.0])), 10.0)


def test_rayleigh_power_has_unit_mean_and_no_fading_is_one() -> None:
    rng = np.random.default_rng(0)
    assert math.isclose(
        float(np.mean(fading_power(rng, (200_000,), "rayleigh"))), 1.0, rel_tol=0.01
    )
    assert np.all(fading_power(rng, (5,), "none") == 1.0)
    assert np.all(fading_power(None, (5,), "rayleigh") == 1.0)


def test_transfer_time_without_errors_is_size_over_rate() -> None:
    t, failed = transfer_time(1_000_000, 8e6, frame_bytes=1500)
    assert math.isclose(float(t), 1.0) and not failed.any()


def test_frame_errors_match_truncated_geometric() -> None:
    assert expected_transmissions(0.0, 3) == 1.0
    assert math.isclose(expected_transmissions(0.5, 1), 1.5)  # 1 + 0.5
    rng = np.random.default_rng(1)
    t, failed = transfer_time(
        np.full(20_000, 150_000.0),
        1e6,
        frame_bytes=1500,
        frame_error_rate=0.2,
        max_retransmissions=50,
        rng=rng,
    )
    expect, _ = transfer_time(
        150_000.0, 1e6, frame_bytes=1500, frame_error_rate=0.2, max_retransmissions=50
    )
    assert math.isclose(float(np.mean(t)), float(expect), rel_tol=0.005)
    assert not failed.any()


def test_no_retransmission_fails_with_frame_loss() -> None:
    rng = np.random.default_rng(2)
    _, failed = transfer_time(
        np.full(10_000, 1500.0),
        1e6,
        frame_bytes=1500,
        frame_error_rate=0.3,
        max_retransmissions=0,
        rng=rng,
    )
    assert 0.27 < failed.mean() < 0.33  # one frame, lost with probability 0.3


def test_link_delay_hops() -> None:
    link = LinkConfig(bandwidth_hz=1e6, snr_db=0.0, latency_s=0.1, hops=3)  # 1 Mbit/s
    assert math.isclose(float(link_delay(link, 125_000)), 3 * (1.0 + 0.1))


@given(st.floats(1e3, 1e8), st.floats(0.0, 1e4), st.floats(1e-3, 10.0))
def test_rate_monotone_in_snr_and_bandwidth(b: float, snr: float, k: float) -> None:
    assert shannon_rate(b, snr + k) > shannon_rate(b, snr)
    assert shannon_rate(b * (1 + k), snr) >= shannon_rate(b, snr)
