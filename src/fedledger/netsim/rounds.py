"""Vectorised round simulator: train -> upload -> cross-verify -> block -> propagate -> download.

One FL round follows BlockFL (Kim, Park, Bennis, Kim 2019): participants train and upload their
updates to the miners, the miners exchange and verify them (cross-verification), the round's
updates go into block(s) that are mined and propagated, and devices download the block.  Under
``fork_policy="repeat_round"`` a fork of the round's (last) block makes the whole round start
again (BlockFL's N_fork; earlier blocks of a multi-block round are simply mined again);
under ``"remine"`` only the forked block is mined again.  Arrays are (rounds, participants).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from fedledger.netsim.channel import link_rate
from fedledger.netsim.config import NetworkConfig
from fedledger.netsim.consensus import CONSENSUS
from fedledger.netsim.devices import DevicePopulation, download_time, train_time, upload_time

FloatArray = NDArray[np.float64]
COLUMNS = (
    "net_train_s",
    "net_upload_s",
    "net_wait_s",
    "net_verify_s",
    "net_block_s",
    "net_propagation_s",
    "net_download_s",
)


@dataclass(frozen=True)
class RoundBatch:
    """Simulated rounds.  ``columns[name]`` is (rounds,); the round time is their sum.

    completion_s: (rounds, k) train + upload time of each participant in the round's final
    attempt, +inf where it did not deliver (offline, dropped out, lost, or past the deadline).
    """

    columns: dict[str, FloatArray]
    completion_s: FloatArray
    delivered: NDArray[np.bool_]
    attempts: NDArray[np.int64]

    @property
    def round_s(self) -> FloatArray:
        return np.asarray(sum(self.columns[c] for c in COLUMNS), dtype=np.float64)


def block_sizes(n_updates: NDArray[np.int64], block_size: int) -> NDArray[np.int64]:
    """(rounds, max_blocks) updates per block (0 = no such block); at least one block per round."""
    nb = np.maximum(1, -(-n_updates // block_size))
    q = np.arange(int(nb.max()))[None, :]
    per = np.clip(n_updates[:, None] - q * block_size, 0, block_size)
    per[q >= nb[:, None]] = -1
    return per


def simulate_rounds(
    cfg: NetworkConfig,
    pop: DevicePopulation,
    participants: ArrayLike,
    *,
    rounds: int,
    update_bytes: float,
    flops_per_sample: float,
    samples: ArrayLike,
    epochs: int,
    rng: np.random.Generator,
    deadline_s: float | None = None,
    online: ArrayLike | None = None,
) -> RoundBatch:
    """Simulate ``rounds`` independent rounds with the same participants (vectorised).

    ``online`` (k,) fixes which participants are online; by default each is online with its
    tier's availability, drawn per round and attempt.
    """
    idx = np.asarray(participants, dtype=np.int64)
    sub = pop.subset(idx)
    k = idx.shape[0]
    if k == 0:
        raise ValueError("a round needs at least one participant")
    fixed = None if online is None else np.asarray(online, dtype=bool)
    t_train = train_time(
        sub.flops, flops_per_sample, np.broadcast_to(np.asarray(samples), (k,)), epochs
    )
    model = CONSENSUS.get(cfg.consensus)
    miner_bps = link_rate(cfg.miner_link)
    m = cfg.num_miners
    cols = {c: np.zeros(rounds) for c in COLUMNS}
    completion = np.full((rounds, k), np.inf)
    attempts = np.zeros(rounds, dtype=np.int64)
    active = np.arange(rounds)
    random_up = cfg.uplink.fading != "none" or cfg.uplink.frame_error_rate > 0
    random_down = cfg.downlink.fading != "none" or cfg.downlink.frame_error_rate > 0
    t_up0, _ = upload_time(sub, cfg.uplink, update_bytes, None)
    base = int(rng.integers(2**62))
    attempt = 0
    while active.size:
        # common random numbers: attempt j of round i always sees the same draws, whatever
        # the other parameters (block rate...), so sweeps compare like with like
        attempt += 1
        st = np.random.default_rng([base, attempt])
        a = active.size
        attempts[active] += 1
        if fixed is not None:
            online = np.broadcast_to(fixed, (a, k))
        elif np.all(sub.availability >= 1.0):
            online = np.ones((a, k), dtype=bool)
        else:
            online = st.random((rounds, k))[active] < sub.availability
        alive = online
        if np.any(sub.dropout > 0):
            alive = online & ~(st.random((rounds, k))[active] < sub.dropout)
        if random_up:
            t_up, lost = upload_time(sub, cfg.uplink, update_bytes, st, shape=(rounds, k))
            t_up, lost = t_up[active], lost[active]
        else:
            t_up = np.broadcast_to(t_up0, (a, k))
            lost = np.zeros((a, k), dtype=bool)
        done = t_train + t_up
        ok = alive & ~lost
        if deadline_s is not None:
            ok &= done <= deadline_s
        completion[active] = np.where(ok, done, np.inf)
        done_ok = np.where(ok, done, -np.inf)
        latest = np.max(done_ok, axis=1, initial=-np.inf)
        any_ok = np.isfinite(latest)
        crit = np.argmax(done_ok, axis=1)
        train_c = np.where(any_ok, t_train[crit], 0.0)
        up_c = np.where(any_ok, t_up[np.arange(a), crit], 0.0)
        phase = np.where(any_ok, latest, 0.0)
        if deadline_s is not None:
            phase = np.where(np.any(online & ~ok, axis=1), deadline_s, phase)
        cols["net_train_s"][active] += train_c
        cols["net_upload_s"][active] += up_c
        cols["net_wait_s"][active] += np.maximum(phase - train_c - up_c, 0.0)
        n_up = ok.sum(axis=1).astype(np.int64)
        exchange = n_up * update_bytes * 8.0 * (m - 1) / m / miner_bps
        cols["net_verify_s"][active] += (
            exchange + n_up * cfg.verify_flops_per_update / cfg.miner_flops
        )
        per = block_sizes(n_up, cfg.block_size)
        going = np.ones(a, dtype=bool)  # rounds whose attempt has not forked yet
        for q in range(per.shape[1]):
            sel = np.flatnonzero(going & (per[:, q] >= 0))
            retry = 0
            while sel.size:
                retry += 1
                full = np.full(rounds, float(cfg.header_bytes))
                full[active[sel]] += per[sel, q] * float(update_bytes)
                ph = model.block_phase(cfg, full, np.random.default_rng([base, attempt, q, retry]))
                rows = active[sel]
                cols["net_block_s"][rows] += ph.block_s[rows]
                cols["net_propagation_s"][rows] += ph.propagation_s[rows]
                forked = ph.forked[rows]
                last = per[sel, q + 1] < 0 if q + 1 < per.shape[1] else np.ones(sel.size, bool)
                if cfg.fork_policy == "repeat_round":  # a forked last block repeats the round
                    going[sel[forked & last]] = False
                    forked = forked & ~last
                sel = sel[forked]
        fin = active[going]
        if fin.size:
            total = (
                cfg.header_bytes * np.maximum(1, -(-n_up // cfg.block_size)) + n_up * update_bytes
            )
            if random_down:
                size = np.zeros((rounds, 1))
                size[active, 0] = total
                t_down = download_time(sub, cfg.downlink, size, st, shape=(rounds, k))[fin]
            else:
                t_down = download_time(sub, cfg.downlink, total[going][:, None], None, shape=(1, k))
            got = online[going]
            cols["net_download_s"][fin] += np.max(np.where(got, t_down, 0.0), axis=1, initial=0.0)
        active = active[~going]
    return RoundBatch(cols, completion, np.isfinite(completion), attempts)


def round_means(batch: RoundBatch) -> dict[str, float]:
    """Mean of every column plus ``net_round_s`` (the per-round sum)."""
    out = {c: float(np.mean(v)) for c, v in batch.columns.items()}
    out["net_round_s"] = float(np.mean(batch.round_s))
    return out


def participants_for(cfg: NetworkConfig, n: int, rng: np.random.Generator) -> Sequence[int]:
    """The participants of the netsim sweep: ``clients_per_round`` drawn at random, or all."""
    k = cfg.clients_per_round or n
    return sorted(rng.choice(n, size=k, replace=False).tolist()) if k < n else list(range(n))
