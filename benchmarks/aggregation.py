"""Robust aggregation speed, side by side with Flower's implementations, in one run.

    .venv/bin/pip install -e '.[bench]'        # flwr==1.42.0
    .venv/bin/python benchmarks/aggregation.py # n = 100 updates, d = 1,000,000 float32

Prints one line per rule, ``RULE fedledger_s=X flower_s=Y speedup=Z`` (best of ``--repeat``
runs each, wall clock), after checking that both sides return the same aggregate.  Flower's
functions take ``list[tuple[NDArrays, int]]``; that list is built once, outside the timing, from
zero-copy numpy views of the same rows.  ``--check`` exits 1 unless Multi-Krum takes <= 1 s
and is >= 5x faster than Flower's ``aggregate_krum``, and median and trimmed mean are no slower
than Flower's.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from fedledger.aggregation import AggregationContext, create_rule

Flower = dict[str, Callable[..., Any]]


def load_flower() -> Flower | None:
    try:
        from flwr.server.strategy.aggregate import (
            aggregate_krum,
            aggregate_median,
            aggregate_trimmed_avg,
        )
    except ImportError as exc:
        print(
            f"# flwr is not importable ({exc}); install the bench extra: pip install -e '.[bench]'",
            file=sys.stderr,
        )
        return None
    return {
        "krum": aggregate_krum,
        "median": aggregate_median,
        "trimmed_mean": aggregate_trimmed_avg,
    }


def best_of(repeat: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    best, out = math.inf, None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100, help="updates per round")
    ap.add_argument("--d", type=int, default=1_000_000, help="parameters per update")
    ap.add_argument("--f", type=int, default=10, help="assumed malicious (Krum's f)")
    ap.add_argument("--beta", type=float, default=0.1, help="trimmed-mean cut per side")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = ap.parse_args(argv)

    n, d, f = args.n, args.d, args.f
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(args.seed)
    updates = torch.randn(n, d, generator=gen) * 0.01 + torch.randn(d, generator=gen) * 0.01
    counts = torch.randint(10, 100, (n,), generator=gen).to(torch.float32)
    rows = updates.numpy()
    results = [([rows[i]], int(counts[i])) for i in range(n)]  # Flower's input format
    ctx = AggregationContext(generator=torch.Generator().manual_seed(args.seed))
    flower = load_flower()
    print(
        f"# n={n} d={d} float32, f={f}, beta={args.beta}, torch threads="
        f"{torch.get_num_threads()}, best of {args.repeat}",
        flush=True,
    )

    cases: list[tuple[str, dict[str, Any], Callable[[], Any]]] = [
        (
            "multikrum",
            {"num_malicious": f, "num_selected": n - f},
            lambda: flower["krum"](results, num_malicious=f, to_keep=n - f) if flower else None,
        ),
        (
            "krum",
            {"num_malicious": f},
            lambda: flower["krum"](results, num_malicious=f, to_keep=0) if flower else None,
        ),
        ("median", {}, lambda: flower["median"](results) if flower else None),
        (
            "trimmed_mean",
            {"beta": args.beta},
            lambda: flower["trimmed_mean"](results, proportiontocut=args.beta) if flower else None,
        ),
    ]
    timings: dict[str, tuple[float, float]] = {}
    for name, params, flower_fn in cases:
        rule = create_rule(name, params, num_clients=n)
        ours_s, ours = best_of(args.repeat, lambda: rule(updates, counts, ctx=ctx))  # noqa: B023
        flower_s = math.nan
        if flower is not None:
            flower_s, theirs = best_of(args.repeat, flower_fn)
            got, want = ours.aggregate.numpy(), np.asarray(theirs[0], dtype=np.float32)
            if not np.allclose(got, want, rtol=1e-4, atol=1e-6):
                worst = float(np.abs(got - want).max())
                print(f"# {name}: aggregates differ from Flower's (max |diff| {worst:.3g})")
        timings[name] = (ours_s, flower_s)
        speedup = flower_s / ours_s if ours_s > 0 else math.inf
        print(f"{name} fedledger_s={ours_s:.3f} flower_s={flower_s:.3f} speedup={speedup:.1f}")
        sys.stdout.flush()

    ok = True
    if flower is None:
        ok = False
    else:
        mk_ours, mk_flower = timings["multikrum"]
        ok &= mk_ours <= 1.0 and mk_flower / mk_ours >= 5.0
        for name in ("median", "trimmed_mean"):
            ok &= timings[name][0] <= timings[name][1]
    print(f"# targets (Multi-Krum <= 1 s and >= 5x; median, trimmed mean >= 1x): {ok}")
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    raise SystemExit(main())
