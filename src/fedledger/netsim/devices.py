"""Heterogeneous devices as numpy arrays (one entry per device), drawn once from the tiers.

Training time follows BlockFL (Kim et al. 2019): T_local = FLOPs per sample x samples x epochs /
device FLOP/s.  Upload and download times use the AWGN channel of :mod:`channel`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from fedledger.netsim.channel import (
    db_to_linear,
    fading_power,
    mean_snr,
    shannon_rate,
    transfer_time,
)
from fedledger.netsim.config import ChannelConfig, NetworkConfig

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class DevicePopulation:
    """Per-device arrays of length n (the order is the engine's client order)."""

    tier: NDArray[np.int64]
    tier_names: tuple[str, ...]
    flops: FloatArray
    distance_m: FloatArray
    up_bandwidth_hz: FloatArray
    up_snr: FloatArray
    down_snr: FloatArray
    availability: FloatArray
    dropout: FloatArray

    def __len__(self) -> int:
        return int(self.flops.shape[0])

    def subset(self, idx: ArrayLike) -> DevicePopulation:
        i = np.asarray(idx, dtype=np.int64)
        return DevicePopulation(
            tier=self.tier[i],
            tier_names=self.tier_names,
            flops=self.flops[i],
            distance_m=self.distance_m[i],
            up_bandwidth_hz=self.up_bandwidth_hz[i],
            up_snr=self.up_snr[i],
            down_snr=self.down_snr[i],
            availability=self.availability[i],
            dropout=self.dropout[i],
        )


def tier_counts(shares: Sequence[float], n: int) -> NDArray[np.int64]:
    """Split n devices over tiers by share (largest remainder), deterministically."""
    raw = np.asarray(shares, dtype=np.float64) * n
    counts = np.floor(raw).astype(np.int64)
    order = np.argsort(-(raw - counts), kind="stable")
    counts[order[: n - int(counts.sum())]] += 1
    return counts


def build_population(
    cfg: NetworkConfig, rng: np.random.Generator, n: int | None = None
) -> DevicePopulation:
    """Draw ``n`` (default ``cfg.num_devices``) devices: tier by share, uniform distance."""
    n = cfg.num_devices if n is None else n
    counts = tier_counts([t.share for t in cfg.tiers], n)
    tier = np.repeat(np.arange(len(cfg.tiers), dtype=np.int64), counts)
    up, down = cfg.uplink, cfg.downlink
    cols: dict[str, list[FloatArray]] = {
        k: [] for k in ("flops", "d", "bw", "usnr", "dsnr", "av", "dr")
    }
    for t, c in zip(cfg.tiers, counts, strict=True):
        c = int(c)
        d = rng.uniform(t.distance_m[0], t.distance_m[1], c)
        bw = np.full(c, t.bandwidth_hz or up.bandwidth_hz)
        if t.snr_db is not None:
            usnr = np.full(c, db_to_linear(t.snr_db))
        else:
            usnr = mean_snr(up, d, tx_power_dbm=t.tx_power_dbm, bandwidth_hz=bw)
        cols["flops"].append(np.full(c, t.flops))
        cols["d"].append(d)
        cols["bw"].append(bw)
        cols["usnr"].append(usnr)
        cols["dsnr"].append(mean_snr(down, d))
        cols["av"].append(np.full(c, t.availability))
        cols["dr"].append(np.full(c, t.dropout))
    cat = {k: np.concatenate(v) if v else np.zeros(0) for k, v in cols.items()}
    return DevicePopulation(
        tier=tier,
        tier_names=tuple(t.name for t in cfg.tiers),
        flops=cat["flops"],
        distance_m=cat["d"],
        up_bandwidth_hz=cat["bw"],
        up_snr=cat["usnr"],
        down_snr=cat["dsnr"],
        availability=cat["av"],
        dropout=cat["dr"],
    )


def train_time(
    flops: ArrayLike, flops_per_sample: float, samples: ArrayLike, epochs: int
) -> FloatArray:
    """Local training time (s): FLOPs per sample x samples x epochs / FLOP/s."""
    work = flops_per_sample * np.asarray(samples, dtype=np.float64) * epochs
    return np.asarray(work / np.asarray(flops, dtype=np.float64), dtype=np.float64)


def _transfer(
    bw: FloatArray,
    snr: FloatArray,
    ch: ChannelConfig,
    num_bytes: ArrayLike,
    rng: np.random.Generator | None,
    shape: tuple[int, ...],
    max_retransmissions: int,
) -> tuple[FloatArray, NDArray[np.bool_]]:
    """Faded Shannon rate per cell of ``shape``, then the framed transfer over it."""
    return transfer_time(
        num_bytes,
        shannon_rate(bw, snr * fading_power(rng, shape, ch.fading)),
        frame_bytes=ch.frame_bytes,
        frame_error_rate=ch.frame_error_rate,
        max_retransmissions=max_retransmissions,
        rng=rng,
    )


def upload_time(
    pop: DevicePopulation,
    ch: ChannelConfig,
    num_bytes: float,
    rng: np.random.Generator | None,
    shape: tuple[int, ...] | None = None,
) -> tuple[FloatArray, NDArray[np.bool_]]:
    """Upload time of ``num_bytes`` per device (one draw of fading and frame errors per cell).

    ``shape`` may add leading dimensions (e.g. (rounds, n)) for vectorised repetitions.
    """
    shape = shape or (len(pop),)
    return _transfer(
        pop.up_bandwidth_hz, pop.up_snr, ch, num_bytes, rng, shape, ch.max_retransmissions
    )


def download_time(
    pop: DevicePopulation,
    ch: ChannelConfig,
    num_bytes: ArrayLike,
    rng: np.random.Generator | None,
    shape: tuple[int, ...] | None = None,
) -> FloatArray:
    """Download time per device (failed frames are simply resent: the base station retries)."""
    shape = shape or (len(pop),)
    bw = np.full(len(pop), ch.bandwidth_hz)
    t, _ = _transfer(bw, pop.down_snr, ch, num_bytes, rng, shape, 10**6)
    return t


def expected_round_trip(
    pop: DevicePopulation,
    cfg: NetworkConfig,
    update_bytes: float,
    flops_per_sample: float,
    samples: ArrayLike,
    epochs: int,
) -> FloatArray:
    """Expected train + upload time per device without fading (for deadline-aware policies)."""
    t_up, _ = upload_time(pop, cfg.uplink.model_copy(update={"fading": "none"}), update_bytes, None)
    return train_time(pop.flops, flops_per_sample, samples, epochs) + t_up
