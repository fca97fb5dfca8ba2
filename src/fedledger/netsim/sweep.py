"""Parameter sweeps for ``fedledger netsim``: parse ``--sweep`` specs, run one row per point.

A spec is ``network.PATH=lo:hi:n`` (n values spaced linearly; ``lo:hi:n:log`` geometrically;
integers stay integers when lo and hi are written as integers) or ``network.PATH=a,b,c``.
Several specs sweep their Cartesian product.  Every point reuses the same seed, so points
differ only by their parameters (common random numbers).
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from fedledger.errors import ConfigError
from fedledger.netsim.analysis import blockfl_latency, blockfl_terms
from fedledger.netsim.config import SECTION, NetworkConfig, load_network_config
from fedledger.netsim.consensus import CONSENSUS
from fedledger.netsim.devices import build_population, expected_round_trip
from fedledger.netsim.rounds import COLUMNS, participants_for, round_means, simulate_rounds
from fedledger.netsim.scheduling import check_deadline

Value = int | float | str | bool
Sweep = tuple[str, list[Value]]

CSV_COLUMNS = (
    "block_rate",
    "block_size",
    "block_bytes",
    "propagation_delay_s",
    "mean_block_interval_s",
    "fork_rate",
    "fork_rate_analytic",
    "tree_fork_rate",
    "orphan_rate",
    "round_latency_s",
    "round_latency_analytic_s",
    "tps",
    "tps_capacity",
    "mean_queue_len",
    "max_queue_len",
    *COLUMNS,
    "net_round_s",
    "consensus",
    "num_miners",
    "seed",
)


def _scalar(text: str) -> Value:
    t = text.strip()
    if t.lower() in ("true", "false"):
        return t.lower() == "true"
    for cast in (int, float):
        try:
            return cast(t)
        except ValueError:
            pass
    return t


def parse_sweep(spec: str) -> Sweep:
    """``"network.block_rate=0.05:2.0:20"`` -> ("block_rate", [0.05, ..., 2.0])."""
    if "=" not in spec:
        raise ConfigError(f"--sweep {spec!r}: expected KEY=lo:hi:n or KEY=a,b,c")
    key, _, rhs = spec.partition("=")
    key = key.strip()
    if key.startswith(SECTION + "."):
        key = key[len(SECTION) + 1 :]
    if not key or not rhs.strip():
        raise ConfigError(f"--sweep {spec!r}: expected KEY=lo:hi:n or KEY=a,b,c")
    if ":" in rhs:
        parts = rhs.split(":")
        if len(parts) not in (3, 4) or (len(parts) == 4 and parts[3].strip() != "log"):
            raise ConfigError(f"--sweep {spec!r}: a range is lo:hi:n or lo:hi:n:log")
        lo, hi, n = _scalar(parts[0]), _scalar(parts[1]), _scalar(parts[2])
        if (
            not isinstance(n, int)
            or n < 1
            or not all(isinstance(v, (int, float)) for v in (lo, hi))
        ):
            raise ConfigError(f"--sweep {spec!r}: lo and hi must be numbers and n an integer >= 1")
        assert isinstance(lo, (int, float)) and isinstance(hi, (int, float))
        if len(parts) == 4:
            if lo <= 0 or hi <= 0:
                raise ConfigError(f"--sweep {spec!r}: a log range needs lo, hi > 0")
            grid = np.geomspace(lo, hi, n)
        else:
            grid = np.linspace(lo, hi, n)
        if isinstance(lo, int) and isinstance(hi, int) and not isinstance(lo, bool):
            return key, list(dict.fromkeys(int(round(v)) for v in grid))
        return key, [float(v) for v in grid]
    return key, [_scalar(v) for v in rhs.split(",") if v.strip()]


def apply_override(section: Mapping[str, Any], key: str, value: Value) -> dict[str, Any]:
    """A deep copy of ``section`` with the dotted ``key`` set to ``value``."""
    out = copy.deepcopy(dict(section))
    node = out
    *path, leaf = key.split(".")
    for p in path:
        child = node.get(p)
        if child is None:
            child = {}
        elif not isinstance(child, dict):
            raise ConfigError(f"--sweep {SECTION}.{key}: {p!r} is not a section")
        node[p] = child = dict(child)
        node = child
    node[leaf] = value
    return out


def run_point(cfg: NetworkConfig, seed: int) -> dict[str, Any]:
    """One CSV row: chain statistics, simulated and analytic round latency, breakdown means."""
    model = CONSENSUS.get(cfg.consensus)
    chain = model.simulate_chain(cfg, np.random.default_rng([seed, 1]))
    pop = build_population(cfg, np.random.default_rng([seed, 0]))
    who = participants_for(cfg, len(pop), np.random.default_rng([seed, 3]))
    u, f, n, e = (
        float(cfg.update_bytes),
        cfg.flops_per_sample,
        cfg.samples_per_device,
        cfg.local_epochs,
    )
    check_deadline(cfg.deadline_s, float(np.min(expected_round_trip(pop, cfg, u, f, n, e))))
    batch = simulate_rounds(
        cfg,
        pop,
        who,
        rounds=cfg.rounds,
        update_bytes=u,
        flops_per_sample=f,
        samples=n,
        epochs=e,
        rng=np.random.default_rng([seed, 2]),
        deadline_s=cfg.deadline_s,
    )
    means = round_means(batch)
    if cfg.consensus == "pow":
        terms = blockfl_terms(
            cfg, pop, who, update_bytes=u, flops_per_sample=f, samples=n, epochs=e
        )
        analytic = blockfl_latency(cfg.block_rate, terms)
        capacity = cfg.block_rate * cfg.block_size
    else:
        analytic = math.nan
        capacity = cfg.block_size / chain.mean_block_interval_s
    return {
        "block_rate": cfg.block_rate,
        "block_size": cfg.block_size,
        "block_bytes": cfg.block_bytes,
        "propagation_delay_s": chain.propagation_delay_s,
        "mean_block_interval_s": chain.mean_block_interval_s,
        "fork_rate": chain.fork_rate,
        "fork_rate_analytic": model.fork_probability(cfg, chain.propagation_delay_s),
        "tree_fork_rate": chain.tree_fork_rate,
        "orphan_rate": chain.orphan_rate,
        "round_latency_s": means["net_round_s"],
        "round_latency_analytic_s": analytic,
        "tps": chain.tps,
        "tps_capacity": capacity if cfg.tx_rate is None else min(cfg.tx_rate, capacity),
        "mean_queue_len": chain.mean_queue_len,
        "max_queue_len": chain.max_queue_len,
        **means,
        "consensus": cfg.consensus,
        "num_miners": cfg.num_miners,
        "seed": seed,
    }


def run_sweep(
    section: Mapping[str, Any],
    seed: int,
    sweeps: Sequence[Sweep],
    *,
    progress: Callable[[int, int, Mapping[str, Value]], None] | None = None,
) -> list[dict[str, Any]]:
    """Rows for every point of the Cartesian product of ``sweeps`` (one row when empty)."""
    configs = sweep_points(section, seed, sweeps)
    rows = []
    for i, (swept, cfg, point_seed) in enumerate(configs):
        row = run_point(cfg, point_seed)
        for k, v in swept.items():
            row.setdefault(k, v)
        rows.append(row)
        if progress is not None:
            progress(i + 1, len(configs), swept)
    return rows


def sweep_points(
    section: Mapping[str, Any], seed: int, sweeps: Sequence[Sweep]
) -> list[tuple[dict[str, Value], NetworkConfig, int]]:
    """Every point's (swept values, validated config, seed); a ConfigError before anything
    runs when one of them is invalid."""
    keys = [k for k, _ in sweeps]
    points = list(itertools.product(*(v for _, v in sweeps))) if sweeps else [()]
    configs = []
    for point in points:
        sec: dict[str, Any] = dict(section)
        point_seed = seed
        for k, v in zip(keys, point, strict=True):
            if k == "seed":
                if not isinstance(v, int):
                    raise ConfigError(f"--sweep seed: expected integers, got {v!r}")
                point_seed = v
            else:
                sec = apply_override(sec, k, v)
        configs.append((dict(zip(keys, point, strict=True)), load_network_config(sec), point_seed))
    return configs


def csv_columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The fixed columns first, then any swept keys that are not among them."""
    extra = [k for r in rows for k in r if k not in CSV_COLUMNS]
    return list(CSV_COLUMNS) + list(dict.fromkeys(extra))
