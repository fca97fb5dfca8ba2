"""BlockFL's end-to-end latency model and its latency-optimal block arrival rate.

Kim, Park, Bennis, Kim, "Blockchained On-Device Federated Learning", IEEE Communications
Letters 24(6), 2020 (arXiv:1808.03949), Sec. III.  One epoch (round) takes

    T = N_fork (T_local + T_up + T_cross + T_bg + T_bp) + T_down,

where the winning block is generated after T_bg ~ Exp(lambda) (lambda: network-wide block
arrival rate, i.e. the paper's per-miner rate times N_M), propagates for T_bp, and forks with
probability p_fork = 1 - sum_j s_j exp(-lambda (1 - s_j) T_bp) (= 1 - exp(-lambda (1 - 1/N_M)
T_bp) for N_M equal miners).  N_fork is geometric with mean 1/(1 - p_fork), hence

    E[T] = (T_local + T_up + T_cross + 1/lambda + T_bp) / (1 - p_fork) + T_down.

Setting dE/dlambda = 0 with c = (1 - 1/N_M) T_bp and A = T_local + T_up + T_cross + T_bp gives
c A lambda^2 + c lambda - 1 = 0, i.e.

    lambda* = 2 / (c (1 + sqrt(1 + 4 A / c))).

Small lambda waits long for blocks, large lambda forks often: E[T] is U-shaped in lambda.
``fork_policy="remine"`` (only the block is mined again) replaces A by T_bp.  When a round's
updates need several blocks, forks of the earlier blocks only re-mine them (mean
(1/lambda + T_bp,i) / (1 - p_i) each) and a fork of the last block repeats the round.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from fedledger.netsim.channel import link_delay, link_rate
from fedledger.netsim.config import NetworkConfig
from fedledger.netsim.consensus.pow import fork_probability
from fedledger.netsim.devices import DevicePopulation, download_time, train_time, upload_time
from fedledger.netsim.rounds import block_sizes


@dataclass(frozen=True)
class BlockFLTerms:
    """The deterministic delays of one round (seconds) and the miners' hash-power shares."""

    t_local: float
    t_up: float
    t_cross: float
    t_bp: tuple[float, ...]
    """Propagation delay of each block of the round (one block in BlockFL)."""
    t_down: float
    shares: tuple[float, ...]
    fork_policy: str = "repeat_round"

    @property
    def t_wait(self) -> float:
        """Time before mining starts: T_local + T_up + T_cross."""
        return self.t_local + self.t_up + self.t_cross


def blockfl_terms(
    cfg: NetworkConfig,
    pop: DevicePopulation,
    participants: Sequence[int],
    *,
    update_bytes: float,
    flops_per_sample: float,
    samples: ArrayLike,
    epochs: int,
) -> BlockFLTerms:
    """BlockFL's delays for these participants: the slowest one sets T_local + T_up and T_down.

    Assumes what the analysis assumes: no fading, every participant online and delivering,
    frame errors only through the mean number of transmissions.
    """
    sub = pop.subset(participants)
    k = len(participants)
    t_up, _ = upload_time(sub, cfg.uplink, update_bytes, None)
    done = (
        train_time(sub.flops, flops_per_sample, np.broadcast_to(np.asarray(samples), (k,)), epochs)
        + t_up
    )
    crit = int(np.argmax(done))
    m = cfg.num_miners
    exchange = k * update_bytes * 8.0 * (m - 1) / m / link_rate(cfg.miner_link)
    t_cross = exchange + k * cfg.verify_flops_per_update / cfg.miner_flops
    per = block_sizes(np.array([k], dtype=np.int64), cfg.block_size)[0].tolist()
    t_bp = tuple(
        float(link_delay(cfg.miner_link, cfg.header_bytes + n * update_bytes)) for n in per
    )
    total = len(per) * cfg.header_bytes + k * update_bytes
    t_down = download_time(sub, cfg.downlink, total, None)
    return BlockFLTerms(
        t_local=float(done[crit] - t_up[crit]),
        t_up=float(t_up[crit]),
        t_cross=float(t_cross),
        t_bp=t_bp,
        t_down=float(np.max(t_down)),
        shares=cfg.shares,
        fork_policy=cfg.fork_policy,
    )


def blockfl_latency(rate: float, terms: BlockFLTerms) -> float:
    """E[T] of one round at block arrival rate ``rate`` (see the module docstring)."""
    p = [fork_probability(rate, terms.shares, t) for t in terms.t_bp]
    mine = [1.0 / rate + t for t in terms.t_bp]
    if terms.fork_policy == "remine":
        return (
            terms.t_wait + sum(x / (1.0 - q) for x, q in zip(mine, p, strict=True)) + terms.t_down
        )
    # earlier blocks of a multi-block round are re-mined; a fork of the last repeats the round
    attempt = terms.t_wait + sum(x / (1.0 - q) for x, q in zip(mine[:-1], p[:-1], strict=True))
    return (attempt + mine[-1]) / (1.0 - p[-1]) + terms.t_down


def blockfl_optimal_rate(terms: BlockFLTerms) -> float:
    """Closed-form lambda* for one block and equal miners; +inf when nothing can fork."""
    n = len(terms.shares)
    if len(terms.t_bp) != 1 or not np.allclose(terms.shares, 1.0 / n):
        return golden_min(lambda r: blockfl_latency(r, terms), _bracket(terms))
    c = (1.0 - 1.0 / n) * terms.t_bp[0]
    if c <= 0.0:
        return math.inf
    a = terms.t_bp[0] + (0.0 if terms.fork_policy == "remine" else terms.t_wait)
    return 2.0 / (c * (1.0 + math.sqrt(1.0 + 4.0 * a / c)))


def _bracket(terms: BlockFLTerms) -> tuple[float, float]:
    scale = terms.t_wait + sum(terms.t_bp) + 1e-9
    return 1e-4 / scale, 1e4 / scale


def golden_min(
    f: Callable[[float], float], bounds: tuple[float, float], tol: float = 1e-8
) -> float:
    """Minimise a unimodal f on [lo, hi] by golden-section search in log space."""
    lo, hi = math.log(bounds[0]), math.log(bounds[1])
    g = (math.sqrt(5.0) - 1.0) / 2.0
    a, b = hi - g * (hi - lo), lo + g * (hi - lo)
    fa, fb = f(math.exp(a)), f(math.exp(b))
    while hi - lo > tol:
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - g * (hi - lo)
            fa = f(math.exp(a))
        else:
            lo, a, fa = a, b, fb
            b = lo + g * (hi - lo)
            fb = f(math.exp(b))
    return math.exp((lo + hi) / 2.0)


def empirical_minimum(x: ArrayLike, y: ArrayLike) -> float:
    """Argmin of sampled y(x), refined by a parabola in log x through the best 5 points."""
    xs, ys = np.log(np.asarray(x, dtype=np.float64)), np.asarray(y, dtype=np.float64)
    i = int(np.argmin(ys))
    if i == 0 or i == xs.size - 1:
        return float(np.exp(xs[i]))
    lo, hi = max(0, i - 2), min(xs.size, i + 3)
    c2, c1, _ = np.polyfit(xs[lo:hi], ys[lo:hi], 2)
    if c2 <= 0:
        return float(np.exp(xs[i]))
    return float(np.exp(np.clip(-c1 / (2.0 * c2), xs[lo], xs[hi - 1])))
