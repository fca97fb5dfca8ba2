"""PNG plots of netsim rows (matplotlib, Agg backend): latency vs block rate, TPS, breakdown."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from fedledger.netsim.rounds import COLUMNS  # noqa: E402

Row = Mapping[str, Any]
LABELS = {
    "net_train_s": "local training",
    "net_upload_s": "upload",
    "net_wait_s": "deadline wait",
    "net_verify_s": "cross-verification",
    "net_block_s": "block generation",
    "net_propagation_s": "propagation",
    "net_download_s": "download",
}


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(float(v))


def plot_latency_vs_rate(
    rows: Sequence[Row],
    path: Path,
    *,
    optimum: tuple[float, float] | None = None,
    title: str | None = None,
) -> Path:
    """Simulated and analytic round latency against block arrival rate (BlockFL's U-curve).

    ``optimum`` = (analytic lambda*, simulated lambda*) draws both as vertical lines.
    """
    rs = sorted(rows, key=lambda r: float(r["block_rate"]))
    x = [float(r["block_rate"]) for r in rs]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.plot(x, [r["round_latency_s"] for r in rs], "o", ms=4, label="simulated")
    ana = [
        (xi, r["round_latency_analytic_s"])
        for xi, r in zip(x, rs, strict=True)
        if _finite(r["round_latency_analytic_s"])
    ]
    if ana:
        ax.plot([a for a, _ in ana], [b for _, b in ana], "-", label="analytic (BlockFL)")
    if optimum is not None:
        ax.axvline(optimum[0], ls="--", c="C1", lw=1, label=f"analytic optimum {optimum[0]:.3g}/s")
        ax.axvline(optimum[1], ls=":", c="C0", lw=1, label=f"simulated optimum {optimum[1]:.3g}/s")
    ax.set_xlabel("block arrival rate lambda (blocks/s)")
    ax.set_ylabel("round latency (s)")
    ax.set_yscale("log")
    ax.set_title(title or "Round latency vs block arrival rate")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_tps(rows: Sequence[Row], path: Path) -> Path:
    """TPS against block size and against the mean block interval."""
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9.6, 3.8))
    for ax, key, label in (
        (a1, "block_size", "block size (tx per block)"),
        (a2, "mean_block_interval_s", "mean block interval (s)"),
    ):
        rs = sorted(rows, key=lambda r: float(r[key]))
        ax.plot([r[key] for r in rs], [r["tps"] for r in rs], "o-", ms=4, label="simulated")
        ax.plot(
            [r[key] for r in rs],
            [r["tps_capacity"] for r in rs],
            "--",
            lw=1,
            label="capacity (no forks)",
        )
        ax.set_xlabel(label)
        ax.set_ylabel("TPS (confirmed tx/s)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Throughput")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_breakdown(rows: Sequence[Row], path: Path, *, label_key: str | None = None) -> Path:
    """Stacked bars of the mean round latency breakdown, one bar per row."""
    fig, ax = plt.subplots(figsize=(max(6.4, 0.35 * len(rows) + 3), 4.2))
    xs = list(range(len(rows)))
    bottom = [0.0] * len(rows)
    for i, col in enumerate(COLUMNS):
        vals = [float(r.get(col, 0.0)) for r in rows]
        if not any(vals):
            continue
        ax.bar(xs, vals, bottom=bottom, label=LABELS[col], color=f"C{i}")
        bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
    key = label_key or "block_rate"
    ax.set_xticks(xs, [f"{r.get(key, '')}"[:6] for r in rows], rotation=60, fontsize=7)
    ax.set_xlabel(key)
    ax.set_ylabel("mean round latency (s)")
    ax.set_title("Round latency breakdown")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
