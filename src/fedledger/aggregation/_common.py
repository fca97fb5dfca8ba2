"""Helpers shared by the robust rules: parameter checks, shares, averaging, seeded noise, and
coordinate-wise order statistics over column blocks."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

from fedledger.errors import ConfigError

# ---------------------------------------------------------------- parameter checks (config time)


def param_int(
    params: Mapping[str, Any], key: str, *, rule: str, default: int | None, minimum: int = 0
) -> int | None:
    """``params[key]`` as an int >= minimum (None when absent and ``default`` is None)."""
    value = params.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{rule}: {key} must be an integer, got {value!r}")
    if value < minimum:
        raise ConfigError(f"{rule}: {key} must be >= {minimum}, got {value}")
    return value


def param_float(
    params: Mapping[str, Any],
    key: str,
    *,
    rule: str,
    default: float | None,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float | None:
    """``params[key]`` as a float inside [low, high] (open ends where asked)."""
    value = params.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{rule}: {key} must be a number, got {value!r}")
    v = float(value)
    if not np.isfinite(v):
        raise ConfigError(f"{rule}: {key} must be finite, got {v}")
    if low is not None and (v < low or (low_open and v == low)):
        raise ConfigError(f"{rule}: {key} must be {'>' if low_open else '>='} {low}, got {v}")
    if high is not None and (v > high or (high_open and v == high)):
        raise ConfigError(f"{rule}: {key} must be {'<' if high_open else '<='} {high}, got {v}")
    return v


def require_clients(n: int, minimum: int, *, rule: str, why: str) -> None:
    """Raise ConfigError when a round has fewer than ``minimum`` updates."""
    if n < minimum:
        raise ConfigError(
            f"{rule} needs at least {minimum} updates per round ({why}), got {n}; "
            "raise clients_per_round or lower the rule's num_malicious"
        )


# ---------------------------------------------------------------- runtime helpers


def as_batch(updates: torch.Tensor, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Check shapes; return (float32 contiguous (n, d), float64 (n,) weights)."""
    if updates.dim() != 2 or updates.shape[0] == 0:
        raise ValueError(f"updates must be a non-empty (n, d) tensor, got {tuple(updates.shape)}")
    if weights.shape != (updates.shape[0],):
        raise ValueError(
            f"weights must have shape ({updates.shape[0]},), got {tuple(weights.shape)}"
        )
    w = weights.to(torch.float64)
    if bool((w < 0).any()):
        raise ValueError("weights (sample counts) must be non-negative")
    return updates.detach().to(torch.float32).contiguous(), w


def shares(weights: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Non-negative weights, restricted to ``mask`` -> float64 shares summing to 1 over the mask
    (uniform over the mask when its weights sum to zero)."""
    w = weights.to(torch.float64)
    if mask is not None:
        w = torch.where(mask, w, torch.zeros_like(w))
    total = w.sum()
    if total > 0:
        return w / total
    base = mask.to(torch.float64) if mask is not None else torch.ones_like(w)
    count = base.sum()
    return base / count if count > 0 else base


def combine(updates: torch.Tensor, coeffs: torch.Tensor) -> torch.Tensor:
    """(n, d), (n,) -> (d,) = Σ coeffs_i · updates_i, one float32 GEMV over all rows (gathering
    the kept rows first would copy them).  Rows must be finite (the engine rejects NaN/Inf
    before aggregation): an excluded row enters with coefficient 0."""
    return coeffs.to(torch.float32) @ updates


def excluded_indices(mask_kept: torch.Tensor) -> tuple[int, ...]:
    return tuple(int(i) for i in torch.nonzero(~mask_kept).flatten().tolist())


def gaussian_noise(
    d: int, std: float, generator: torch.Generator | None, *, rule: str
) -> torch.Tensor:
    """(d,) N(0, std²) noise drawn from the round's generator (the auditor re-creates it)."""
    if generator is None:
        raise ConfigError(
            f"{rule} adds noise and needs ctx.generator (seeded per round) to be reproducible"
        )
    return torch.randn(d, generator=generator, dtype=torch.float32) * std


# ---------------------------------------------------------------- coordinate-wise statistics

BlockFn = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
BLOCK_COLUMNS = 4096


def reduce_columns(updates: torch.Tensor, block_fn: BlockFn) -> tuple[torch.Tensor, torch.Tensor]:
    """Coordinate-wise statistic over (n, d): ``block_fn`` gets a contiguous (C, n) float32 block
    (C coordinates, one row each) and returns (values (C,), per-client counts (n,)).

    Column blocks stay in cache and numpy's SIMD sort handles the short rows, which is several
    times faster than sorting along dim 0; blocks run on ``torch.get_num_threads()`` threads
    (numpy releases the GIL), results land in disjoint slices, so the output is deterministic.
    """
    arr = updates.numpy()
    n, d = arr.shape
    out = np.empty(d, dtype=np.float32)

    def work(start: int) -> np.ndarray:
        block = np.ascontiguousarray(arr[:, start : start + BLOCK_COLUMNS].T)
        values, counts = block_fn(block)
        out[start : start + block.shape[0]] = values
        return counts

    starts = range(0, d, BLOCK_COLUMNS)
    threads = max(1, min(torch.get_num_threads(), len(starts)))
    total = np.zeros(n, dtype=np.int64)
    if threads == 1:
        for s in starts:
            total += work(s)
    else:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            for counts in pool.map(work, starts):
                total += counts
    return torch.from_numpy(out), torch.from_numpy(total)


def in_range_counts(block: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """(C, n) block, (C,) bounds -> (n,) how many coordinates of each client lie in [low, high]."""
    inside = (block >= low[:, None]) & (block <= high[:, None])
    counts: np.ndarray = inside.sum(axis=0, dtype=np.int64)
    return counts


def middle_of_sorted(sorted_block: np.ndarray) -> np.ndarray:
    """(C, n) rows sorted ascending -> (C,) medians (mean of the two middle values for even n)."""
    n = sorted_block.shape[1]
    lo = sorted_block[:, (n - 1) // 2]
    hi = sorted_block[:, n // 2]
    mid: np.ndarray = lo * np.float32(0.5) + hi * np.float32(0.5)
    return mid


def coordinate_shares(counts: torch.Tensor) -> torch.Tensor:
    """Per-client coordinate counts -> float32 shares summing to 1 (uniform when all are 0)."""
    return shares(counts).to(torch.float32)
