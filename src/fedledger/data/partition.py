"""Split a training set among clients, by named scheme; seeded, every sample to exactly one client.

Schemes (``partition_names()``):

- ``iid``: a seeded permutation cut into ``num_clients`` near-equal parts.
- ``dirichlet``: for each class, client shares ~ Dirichlet(alpha * 1); resampled (at most
  ``MAX_DIRICHLET_TRIES`` times) until every client holds >= ``min_size`` samples.
  Small alpha -> few classes per client; large alpha -> close to IID.
- ``shards``: samples sorted by label (random order within a class) cut into
  ``num_clients * shards_per_client`` contiguous shards; each client gets ``shards_per_client``
  random shards, so about that many classes (McMahan et al., 2017).
- ``quantity_skew``: IID labels, client sizes proportional to LogNormal(0, sigma) draws, each at
  least ``min_size``.

Each client's part is a sorted int64 array of indices into ``labels``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from fedledger.errors import ConfigError, RegistryError
from fedledger.registry import Registry

MAX_DIRICHLET_TRIES = 1000


@dataclass(frozen=True)
class _Args:
    num_clients: int
    alpha: float
    shards_per_client: int
    sigma: float
    min_size: int
    params: Mapping[str, Any] = field(default_factory=dict)  # data.partition_params (plugins)


Scheme = Callable[[np.ndarray, _Args, np.random.Generator], list[np.ndarray]]
SCHEMES: Registry[Scheme] = Registry("partition scheme")
_BUILTIN = ("dirichlet", "iid", "quantity_skew", "shards")
PartitionArgs = _Args  # the scheme interface, under a public name


def register_partition(name: str) -> Callable[[Scheme], Scheme]:
    """Decorator: register ``scheme(labels, args: PartitionArgs, rng) -> list of index
    arrays`` (one per client, together every index once) under ``name``."""
    return SCHEMES.register(name)


def partition_names() -> list[str]:
    return SCHEMES.names()


def _as_labels(labels: np.ndarray | torch.Tensor | Sequence[int]) -> np.ndarray:
    arr = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if arr.ndim != 1:
        raise ConfigError(f"labels must be a 1-D array, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ConfigError(f"labels must be integers 0..K-1, got dtype {arr.dtype}")
    if arr.size and int(arr.min()) < 0:
        raise ConfigError("labels must be non-negative class indices")
    return arr.astype(np.int64, copy=False)


def _positive_int(name: str, value: object, minimum: int = 1) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def partition(
    labels: np.ndarray | torch.Tensor,
    *,
    num_clients: int,
    scheme: str,
    seed: int,
    alpha: float = 0.5,
    shards_per_client: int = 2,
    sigma: float = 1.0,
    min_size: int = 1,
    params: Mapping[str, Any] | None = None,
) -> list[np.ndarray]:
    """Assign every index of ``labels`` (N,) to exactly one of ``num_clients`` clients.

    Returns ``num_clients`` sorted int64 index arrays. Same arguments -> same partition.
    Raises ConfigError for an unknown scheme or arguments that cannot be met.
    """
    y = _as_labels(labels)
    try:
        fn = SCHEMES.get(scheme)
    except RegistryError:
        raise ConfigError(
            f"unknown partition scheme {scheme!r}; expected one of: {', '.join(partition_names())}"
        ) from None
    n = _positive_int("num_clients", num_clients)
    seed = _positive_int("seed", seed, minimum=0)
    args = _Args(
        num_clients=n,
        alpha=float(alpha),
        shards_per_client=_positive_int("shards_per_client", shards_per_client),
        sigma=float(sigma),
        min_size=_positive_int("min_size", min_size),
        params=dict(params or {}),
    )
    if args.params and scheme in _BUILTIN:
        raise ConfigError(
            f"partition {scheme!r} takes no data.partition_params (they are for a plugin's "
            f"scheme), got {dict(params or {})!r}"
        )
    if not (math.isfinite(args.alpha) and args.alpha > 0):
        raise ConfigError(f"alpha (dirichlet concentration) must be > 0, got {alpha!r}")
    if not (math.isfinite(args.sigma) and args.sigma >= 0):
        raise ConfigError(f"sigma (quantity_skew spread) must be >= 0, got {sigma!r}")
    if n * args.min_size > len(y):
        raise ConfigError(
            f"cannot give {n} clients at least {args.min_size} sample(s) each from {len(y)} "
            "samples; use fewer clients or a smaller min_size"
        )
    drawn = fn(y, args, np.random.default_rng(seed))
    parts = [np.sort(np.asarray(p, dtype=np.int64)) for p in drawn]
    if scheme not in _BUILTIN:  # a plugin's scheme must still give every sample to one client
        got = np.sort(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)
        if len(parts) != n or not np.array_equal(got, np.arange(len(y))):
            raise ConfigError(
                f"partition {scheme!r} must return {n} index arrays that together hold every "
                f"sample index 0..{len(y) - 1} exactly once"
            )
    return parts


def label_histogram(
    labels: np.ndarray | torch.Tensor, parts: list[np.ndarray], *, num_classes: int
) -> np.ndarray:
    """(num_clients, num_classes) int64: how many samples of each class each client holds."""
    y = _as_labels(labels)
    if y.size and int(y.max()) >= num_classes:
        raise ConfigError(f"labels go up to {int(y.max())} but num_classes is {num_classes}")
    hist = np.zeros((len(parts), num_classes), dtype=np.int64)
    for i, p in enumerate(parts):
        hist[i] = np.bincount(y[np.asarray(p, dtype=np.int64)], minlength=num_classes)
    return hist


def format_label_histogram(hist: np.ndarray, *, max_rows: int = 20) -> str:
    """A small text table of a label histogram (one row per client), for run logs."""
    num_clients, num_classes = hist.shape
    width = max(4, len(str(int(hist.max()))) + 1 if hist.size else 4)
    head = "client " + "".join(f"{c:>{width}}" for c in range(num_classes)) + "   total"
    lines = [head]
    for i in range(min(num_clients, max_rows)):
        row = "".join(f"{int(v):>{width}}" for v in hist[i])
        lines.append(f"{i:>6} {row}{int(hist[i].sum()):>8}")
    if num_clients > max_rows:
        lines.append(f"... ({num_clients - max_rows} more clients)")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- schemes


@SCHEMES.register("iid")
def _iid(y: np.ndarray, a: _Args, rng: np.random.Generator) -> list[np.ndarray]:
    return list(np.array_split(rng.permutation(len(y)), a.num_clients))


@SCHEMES.register("dirichlet")
def _dirichlet(y: np.ndarray, a: _Args, rng: np.random.Generator) -> list[np.ndarray]:
    by_class = [np.flatnonzero(y == c) for c in np.unique(y)]
    smallest = 0
    for _ in range(MAX_DIRICHLET_TRIES):
        buckets: list[list[np.ndarray]] = [[] for _ in range(a.num_clients)]
        for idx in by_class:
            idx = idx[rng.permutation(len(idx))]
            shares = rng.dirichlet(np.full(a.num_clients, a.alpha))
            cuts = (np.cumsum(shares)[:-1] * len(idx)).astype(np.int64)
            for k, chunk in enumerate(np.split(idx, cuts)):
                buckets[k].append(chunk)
        sizes = [sum(len(c) for c in b) for b in buckets]
        smallest = min(sizes)
        if smallest >= a.min_size:
            return [np.concatenate(b) if b else np.empty(0, np.int64) for b in buckets]
    raise ConfigError(
        f"dirichlet(alpha={a.alpha}) gave some client fewer than min_size={a.min_size} samples "
        f"in {MAX_DIRICHLET_TRIES} draws (last smallest: {smallest}) for {a.num_clients} clients "
        f"and {len(y)} samples; raise alpha, lower min_size or use fewer clients"
    )


@SCHEMES.register("shards")
def _shards(y: np.ndarray, a: _Args, rng: np.random.Generator) -> list[np.ndarray]:
    num_shards = a.num_clients * a.shards_per_client
    if num_shards > len(y):
        raise ConfigError(
            f"shards: {a.num_clients} clients x {a.shards_per_client} shards = {num_shards} shards "
            f"but only {len(y)} samples; lower shards_per_client or use fewer clients"
        )
    if (len(y) // num_shards) * a.shards_per_client < a.min_size:
        raise ConfigError(
            f"shards: a client may get only {(len(y) // num_shards) * a.shards_per_client} "
            f"samples, below min_size={a.min_size}"
        )
    shuffled = rng.permutation(len(y))
    order = shuffled[np.argsort(y[shuffled], kind="stable")]  # by label, random within a class
    shards = np.array_split(order, num_shards)
    owner = rng.permutation(num_shards)
    return [
        np.concatenate(
            [shards[s] for s in owner[k * a.shards_per_client : (k + 1) * a.shards_per_client]]
        )
        for k in range(a.num_clients)
    ]


@SCHEMES.register("quantity_skew")
def _quantity_skew(y: np.ndarray, a: _Args, rng: np.random.Generator) -> list[np.ndarray]:
    spare = len(y) - a.num_clients * a.min_size
    weights = rng.lognormal(mean=0.0, sigma=a.sigma, size=a.num_clients)
    exact = weights / weights.sum() * spare
    extra = np.floor(exact).astype(np.int64)
    # hand the remaining samples to the largest fractional parts (ties: lowest index)
    rest = spare - int(extra.sum())
    extra[np.argsort(-(exact - extra), kind="stable")[:rest]] += 1
    sizes = a.min_size + extra
    return list(np.split(rng.permutation(len(y)), np.cumsum(sizes)[:-1]))
