"""Annotate real training rounds with simulated network time: the engine's entry point.

Integration API (see docs/netsim.md)::

    from fedledger.netsim import NetworkModel

    net = NetworkModel.from_config(cfg_dict.get("network"), seed=seed, num_devices=num_clients)
    # selection (optional; any policy of fedledger.netsim.scheduling.POLICIES)
    cands = net.candidates(rnd, update_bytes=u, flops_per_sample=f, samples=n_i, epochs=e,
                           reputation=rep)                        # rep: (num_clients,) or None
    chosen = net.select(cands, k, round=rnd)                      # sorted client indices
    # after training (or before, to know who makes the deadline)
    timing = net.simulate_round(rnd, chosen, u, f, n_i[chosen], e)
    keep = timing.delivered              # (k,) bool: False = offline, dropped out or late
    row.update(timing)                   # net_train_s ... net_round_s columns for metrics.csv
    simulated_time_s += timing["net_round_s"]

``timing.completion_s`` holds each participant's train + upload time (inf when it did not
deliver); ``NetworkModel.async_schedule`` gives the event order for FedAsync/FedBuff.
Every call is reproducible: round r draws from ``default_rng([seed, r])``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from fedledger.netsim.asyncfl import AsyncEvent, async_schedule
from fedledger.netsim.channel import shannon_rate
from fedledger.netsim.config import NetworkConfig, load_network_config
from fedledger.netsim.consensus import CONSENSUS
from fedledger.netsim.devices import (
    DevicePopulation,
    build_population,
    download_time,
    expected_round_trip,
    train_time,
    upload_time,
)
from fedledger.netsim.rounds import COLUMNS, simulate_rounds
from fedledger.netsim.scheduling import POLICIES, Candidates, check_deadline

FloatArray = NDArray[np.float64]
_AVAIL, _SELECT, _ROUND, _ASYNC = 1, 2, 3, 4


class RoundTiming(Mapping[str, float]):
    """One simulated round: a mapping of ``net_*`` columns plus per-participant arrays."""

    def __init__(
        self, columns: dict[str, float], participants: NDArray[np.int64], completion_s: FloatArray
    ) -> None:
        self._columns = columns
        self.participants = participants
        self.completion_s = completion_s
        self.delivered: NDArray[np.bool_] = np.isfinite(completion_s)

    def __getitem__(self, key: str) -> float:
        return self._columns[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._columns)

    def __len__(self) -> int:
        return len(self._columns)

    def __repr__(self) -> str:
        return f"RoundTiming({self._columns!r})"


class NetworkModel:
    """Devices, channel and consensus of a ``[network]`` section, ready to time rounds."""

    def __init__(self, cfg: NetworkConfig, population: DevicePopulation, seed: int) -> None:
        self.cfg = cfg
        self.population = population
        self.seed = int(seed)

    @classmethod
    def from_config(
        cls,
        section: Mapping[str, Any] | NetworkConfig | None,
        *,
        seed: int,
        num_devices: int | None = None,
    ) -> NetworkModel:
        """Validate the section (ConfigError on bad values) and draw the devices from ``seed``.

        The deadline is checked against the real workload in ``candidates`` and
        ``simulate_round`` (the config's workload keys are only the netsim sweep's defaults).
        """
        cfg = load_network_config(section)
        if num_devices is not None:
            cfg = cfg.model_copy(update={"num_devices": num_devices})
        pop = build_population(cfg, np.random.default_rng([int(seed), 0]), cfg.num_devices)
        return cls(cfg, pop, seed)

    @property
    def num_devices(self) -> int:
        return len(self.population)

    def _rng(self, round: int, purpose: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, int(round), purpose])

    def online(self, round: int) -> NDArray[np.bool_]:
        """Which devices are online at the start of ``round`` (tier availability)."""
        return self._rng(round, _AVAIL).random(self.num_devices) < self.population.availability

    def expected_times(
        self, *, update_bytes: float, flops_per_sample: float, samples: ArrayLike, epochs: int
    ) -> FloatArray:
        """Expected train + upload time per device; ConfigError if the deadline is impossible."""
        t = expected_round_trip(
            self.population, self.cfg, update_bytes, flops_per_sample, samples, epochs
        )
        check_deadline(self.cfg.deadline_s, float(np.min(t)))
        return t

    def candidates(
        self,
        round: int,
        *,
        update_bytes: float,
        flops_per_sample: float,
        samples: ArrayLike,
        epochs: int,
        reputation: ArrayLike | None = None,
    ) -> Candidates:
        """What selection policies see this round (expected times, rates, online, reputation)."""
        pop = self.population
        rep = (
            np.ones(self.num_devices) if reputation is None else np.asarray(reputation, np.float64)
        )
        return Candidates(
            expected_s=self.expected_times(
                update_bytes=update_bytes,
                flops_per_sample=flops_per_sample,
                samples=samples,
                epochs=epochs,
            ),
            rate_bps=shannon_rate(pop.up_bandwidth_hz, pop.up_snr),
            available=self.online(round),
            reputation=rep,
        )

    def select(
        self, candidates: Candidates, k: int, *, round: int, policy: str | None = None
    ) -> NDArray[np.int64]:
        """Apply the configured (or given) selection policy; seeded by (seed, round)."""
        fn = POLICIES.get(policy or self.cfg.selection)
        return fn(
            candidates,
            k,
            round=round,
            rng=self._rng(round, _SELECT),
            deadline_s=self.cfg.deadline_s,
        )

    def simulate_round(
        self,
        round: int,
        participants: Sequence[int] | NDArray[np.int64],
        update_bytes: int,
        flops_per_sample: float,
        samples: Sequence[int] | ArrayLike,
        epochs: int,
        *,
        deadline_s: float | None = None,
    ) -> RoundTiming:
        """Time one round; participants offline at its start (see ``online``) do not deliver."""
        idx = np.asarray(participants, dtype=np.int64)
        deadline = self.cfg.deadline_s if deadline_s is None else deadline_s
        if deadline is not None:  # impossible only if no device at all could make it
            least = float(np.min(np.asarray(samples, dtype=np.float64)))
            fast = expected_round_trip(
                self.population, self.cfg, update_bytes, flops_per_sample, least, epochs
            )
            check_deadline(deadline, float(np.min(fast)))
        batch = simulate_rounds(
            self.cfg,
            self.population,
            idx,
            rounds=1,
            update_bytes=float(update_bytes),
            flops_per_sample=flops_per_sample,
            samples=samples,
            epochs=epochs,
            rng=self._rng(round, _ROUND),
            deadline_s=deadline,
            online=self.online(round)[idx],
        )
        cols = {c: float(batch.columns[c][0]) for c in COLUMNS}
        cols["net_round_s"] = float(batch.round_s[0])
        cols["net_attempts"] = float(batch.attempts[0])
        cols["net_delivered"] = float(np.sum(batch.delivered[0]))
        return RoundTiming(cols, idx, batch.completion_s[0])

    def job_durations(
        self,
        devices: NDArray[np.int64],
        rng: np.random.Generator,
        *,
        update_bytes: float,
        flops_per_sample: float,
        samples: ArrayLike,
        epochs: int,
    ) -> tuple[FloatArray, NDArray[np.bool_]]:
        """Download the global model + train + upload, per device; False where the job fails."""
        sub = self.population.subset(devices)
        n = np.broadcast_to(np.asarray(samples), (self.num_devices,))[devices]
        down = download_time(sub, self.cfg.downlink, update_bytes, rng)
        up, lost = upload_time(sub, self.cfg.uplink, update_bytes, rng)
        ok = ~lost & (rng.random(len(sub)) >= sub.dropout)
        return down + train_time(sub.flops, flops_per_sample, n, epochs) + up, ok

    def commit_time(self, n_updates: int, rng: np.random.Generator) -> float:
        """Cross-verification + one block (no fork repeats) for an aggregation of ``n_updates``."""
        cfg = self.cfg
        verify = n_updates * cfg.verify_flops_per_update / cfg.miner_flops
        size = np.array([cfg.header_bytes + n_updates * float(cfg.update_bytes)])
        ph = CONSENSUS.get(cfg.consensus).block_phase(cfg, size, rng)
        return float(verify + ph.block_s[0] + ph.propagation_s[0])

    def async_schedule(
        self,
        *,
        concurrency: int,
        buffer_size: int,
        num_updates: int,
        update_bytes: int,
        flops_per_sample: float,
        samples: ArrayLike,
        epochs: int,
        include_commit: bool = True,
    ) -> list[AsyncEvent]:
        """FedAsync (buffer_size=1) / FedBuff arrival schedule over this population."""
        return async_schedule(
            self.num_devices,
            lambda d, r: self.job_durations(
                d,
                r,
                update_bytes=update_bytes,
                flops_per_sample=flops_per_sample,
                samples=samples,
                epochs=epochs,
            ),
            concurrency=concurrency,
            buffer_size=buffer_size,
            num_updates=num_updates,
            rng=self._rng(0, _ASYNC),
            commit_s=(lambda r: self.commit_time(buffer_size, r)) if include_commit else None,
        )
