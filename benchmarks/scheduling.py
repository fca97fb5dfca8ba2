"""Scheduling on heterogeneous devices, in simulated network time (issue: netsim acceptance).

Runs examples/quickstart_network.toml (30 devices: slow phones, vehicles, edge servers; a 4 s
round deadline; PoW at 2 blocks/s) with
  - synchronous FedAvg, random selection (stragglers past the deadline are dropped),
  - synchronous FedAvg, deadline-aware selection (FedCS-style),
  - asynchronous FedBuff (buffer 5) and FedAsync (buffer 1), same number of local updates,
for several seeds, and reports the simulated time to reach the quickstart's target accuracy
(0.93) and the final accuracy. Writes benchmarks/scheduling.md and docs/img/scheduling.png.

    .venv/bin/python benchmarks/scheduling.py [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import csv
import statistics
import tempfile
from pathlib import Path

from fedledger.config import load_config
from fedledger.engine import run_experiment

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "examples/quickstart_network.toml"
TARGET = 0.93
VARIANTS = {
    "sync, random": ['network.selection="random"'],
    "sync, deadline-aware": ['network.selection="deadline_aware"'],
    "async FedBuff (K=5)": ['network.selection="random"', "asynchronous.buffer_size=5"],
    "async FedAsync (K=1)": ['network.selection="random"', "asynchronous.buffer_size=1"],
}


def run(
    variant: list[str], seed: int, tmp: Path
) -> tuple[float | None, float, list[tuple[float, float]]]:
    cfg = load_config(CONFIG, [*variant, f"seed={seed}", "ledger.enabled=false"])
    out = tmp / f"{abs(hash((tuple(variant), seed)))}"
    s = run_experiment(cfg, out=out, progress=False)
    with (out / "metrics.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    curve = [(float(r["simulated_time_s"]), float(r["accuracy"])) for r in rows]
    hit = next((t for t, a in curve if a >= TARGET), None)
    return hit, float(s["final_accuracy"]), curve


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = ap.parse_args()
    results: dict[str, list[tuple[float | None, float]]] = {}
    curves: dict[str, list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, variant in VARIANTS.items():
            for seed in args.seeds:
                hit, final, curve = run(variant, seed, Path(tmp))
                results.setdefault(name, []).append((hit, final))
                if seed == args.seeds[0]:
                    curves[name] = curve
                print(f"{name:<22} seed={seed} time_to_{TARGET}={hit} final_accuracy={final:.4f}")
    lines = [
        "# Scheduling on heterogeneous devices (simulated time)",
        "",
        "Regenerate: `.venv/bin/python benchmarks/scheduling.py --seeds "
        + " ".join(map(str, args.seeds))
        + "`",
        "",
        f"Setting: `{CONFIG.relative_to(ROOT)}` — 30 devices (60% phones at 1e5 FLOP/s, 30% vehicles "
        "at 1e6, 10% edge servers at 1e7; phones 90% available, 5% dropout), 10 per round, "
        "a 4 s deadline (late updates are dropped), PoW with 5 miners at 2 blocks/s, 60 rounds "
        f"(= 600 local updates for the asynchronous runs). Target: test accuracy {TARGET}.",
        "",
        "| variant | "
        + " | ".join(f"seed {s}: time to target (s) / final acc" for s in args.seeds)
        + " | mean time to target (s) |",
        "|---|" + "---|" * (len(args.seeds) + 1),
    ]
    for name, res in results.items():
        cells = [
            f"{h:.1f} / {f:.4f}" if h is not None else f"not reached / {f:.4f}" for h, f in res
        ]
        hits = [h for h, _ in res if h is not None]
        mean = f"{statistics.mean(hits):.1f}" if len(hits) == len(res) else "—"
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {mean} |")
    lines += ["", "![accuracy against simulated time](../docs/img/scheduling.png)", ""]
    (ROOT / "benchmarks/scheduling.md").write_text("\n".join(lines) + "\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, curve in curves.items():
        ax.plot([t for t, _ in curve], [a for _, a in curve], label=name, lw=1.4)
    ax.axhline(TARGET, color="grey", ls="--", lw=0.8)
    ax.set_xlabel("simulated time (s)")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0.5, 1.0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"quickstart on heterogeneous devices (seed {args.seeds[0]})")
    fig.tight_layout()
    (ROOT / "docs/img").mkdir(parents=True, exist_ok=True)
    fig.savefig(ROOT / "docs/img/scheduling.png", dpi=120)
    print("wrote benchmarks/scheduling.md and docs/img/scheduling.png")


if __name__ == "__main__":
    main()
