"""AWGN channel: Shannon rate, path loss, Rayleigh fading, frames with errors and retransmissions.

All functions are vectorised over numpy arrays.  The rate of a link with bandwidth B and
signal-to-noise ratio SNR is B log2(1 + SNR) (Shannon); the SNR is
P_tx * g(d) * |h|^2 / (N0 * B * NF) with path gain g, fading power |h|^2 (1 without fading,
Exp(1) for Rayleigh) and noise PSD N0.  This is the uplink/downlink model of BlockFL
(Kim, Park, Bennis, Kim 2019, Sec. III).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from fedledger.netsim.config import ChannelConfig, LinkConfig

FloatArray = NDArray[np.float64]


def db_to_linear(db: ArrayLike) -> FloatArray:
    return np.power(10.0, np.asarray(db, dtype=np.float64) / 10.0)


def dbm_to_watt(dbm: ArrayLike) -> FloatArray:
    return db_to_linear(dbm) / 1000.0


def path_gain(
    distance_m: ArrayLike,
    exponent: float,
    *,
    model: str = "log_distance",
    reference_loss_db: float = 30.0,
) -> FloatArray:
    """Linear power gain: ``exponent`` model d^-n, or log-distance PL = PL0 + 10 n log10(d)."""
    d = np.asarray(distance_m, dtype=np.float64)
    if model == "exponent":
        return np.power(d, -exponent)
    return db_to_linear(-(reference_loss_db + 10.0 * exponent * np.log10(d)))


def mean_snr(
    ch: ChannelConfig,
    distance_m: ArrayLike,
    *,
    tx_power_dbm: ArrayLike | None = None,
    bandwidth_hz: ArrayLike | None = None,
) -> FloatArray:
    """Mean (unfaded) linear SNR of devices at ``distance_m`` on channel ``ch``."""
    d = np.asarray(distance_m, dtype=np.float64)
    if ch.snr_db is not None:
        return np.broadcast_to(db_to_linear(ch.snr_db), d.shape).astype(np.float64)
    p = dbm_to_watt(ch.tx_power_dbm if tx_power_dbm is None else tx_power_dbm)
    b = np.asarray(ch.bandwidth_hz if bandwidth_hz is None else bandwidth_hz, dtype=np.float64)
    noise = dbm_to_watt(ch.noise_psd_dbm_hz) * b * db_to_linear(ch.noise_figure_db)
    gain = path_gain(
        d, ch.path_loss_exponent, model=ch.path_loss, reference_loss_db=ch.reference_loss_db
    )
    return np.asarray(p * gain / noise, dtype=np.float64)


def fading_power(rng: np.random.Generator | None, shape: tuple[int, ...], kind: str) -> FloatArray:
    """|h|^2: ones without fading (or without a generator), Exp(1) draws for Rayleigh fading."""
    if kind == "rayleigh" and rng is not None:
        return rng.standard_exponential(shape)
    return np.ones(shape)


def shannon_rate(bandwidth_hz: ArrayLike, snr: ArrayLike) -> FloatArray:
    """Capacity of the AWGN channel in bit/s: B log2(1 + SNR)."""
    return np.asarray(bandwidth_hz, dtype=np.float64) * np.log2(
        1.0 + np.asarray(snr, dtype=np.float64)
    )


def link_rate(link: LinkConfig) -> float:
    """Rate of a fixed miner-to-miner link, bit/s."""
    return float(shannon_rate(link.bandwidth_hz, db_to_linear(link.snr_db)))


def link_delay(link: LinkConfig, num_bytes: ArrayLike) -> FloatArray:
    """Store-and-forward delay of ``num_bytes`` over ``link.hops`` hops (transmission + latency)."""
    per_hop = np.asarray(num_bytes, dtype=np.float64) * 8.0 / link_rate(link) + link.latency_s
    return link.hops * per_hop


def expected_transmissions(frame_error_rate: float, max_retransmissions: int) -> float:
    """Mean transmissions per frame with at most ``max_retransmissions`` retries."""
    p = frame_error_rate
    attempts = max_retransmissions + 1
    if p == 0.0:
        return 1.0
    return float((1.0 - p**attempts) / (1.0 - p))


def transfer_time(
    num_bytes: ArrayLike,
    rate_bps: ArrayLike,
    *,
    frame_bytes: int,
    frame_error_rate: float = 0.0,
    max_retransmissions: int = 8,
    rng: np.random.Generator | None = None,
) -> tuple[FloatArray, NDArray[np.bool_]]:
    """Time to deliver ``num_bytes`` in frames, and whether the transfer failed.

    Each frame is lost with probability ``frame_error_rate`` and resent up to
    ``max_retransmissions`` times; a frame lost on every attempt fails the transfer.  With a
    generator the number of transmissions is drawn (negative binomial over the frames);
    without one the expectation is used and nothing fails.
    """
    size = np.asarray(num_bytes, dtype=np.float64)
    rate = np.asarray(rate_bps, dtype=np.float64)
    size, rate = np.broadcast_arrays(size, rate)
    frames = np.ceil(size / frame_bytes)
    frame_s = frame_bytes * 8.0 / rate
    failed = np.zeros(size.shape, dtype=bool)
    if frame_error_rate == 0.0:
        return size * 8.0 / rate, failed
    if rng is None:
        sent = frames * expected_transmissions(frame_error_rate, max_retransmissions)
        return sent * frame_s, failed
    n = frames.astype(np.int64)
    retries = rng.negative_binomial(np.maximum(n, 1), 1.0 - frame_error_rate) * (n > 0)
    p_lost = frame_error_rate ** (max_retransmissions + 1)
    failed = rng.binomial(n, p_lost) > 0 if p_lost > 0 else failed
    return (frames + retries) * frame_s, failed
