"""What a budget buys: participation, accuracy and the requester's spend against the reward
budget, when workers join a task only if its terms cover their expected cost.

The task is examples/crowdsourcing.toml (20 workers of the crowd, data sizes skewed, a fifth of
those who join free-ride, a committee of 5, GTG-Shapley scoring, 10 rounds) with
``incentives.participation = "rational"`` and private costs of 0.001-0.05 tokens per unit of
work (one sample, one epoch), so that a worker's 10 rounds cost it ~1-200 tokens: the rule
(src/fedledger/incentives/participation.py) decides who joins. Everything else, the cost cap
(0.001) and the cost budget (50) included, is the example's. Each reward budget runs once per
seed, on the embedded chain, with the market settled and paid.

Every setting is fixed here, before the run; nothing depends on its results. Writes
benchmarks/participation.csv (one row per budget and seed), benchmarks/participation.png and
benchmarks/participation.md (the table is generated; it holds no typed numbers).

    .venv/bin/python benchmarks/participation.py [--budgets 50,100,200,400,800,1600] [--seeds 0,1,2]
"""

from __future__ import annotations

import argparse
import csv
import statistics
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from fedledger.config import load_config  # noqa: E402
from fedledger.engine import run_experiment  # noqa: E402
from fedledger.errors import ConfigError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OVERRIDES = [
    "incentives.participation='rational'",
    "incentives.cost_low=0.001",
    "incentives.cost_high=0.05",
]
NAN = float("nan")
COLUMNS = ["budget", "seed", "joined", "crowd", "final_accuracy", "spent", "reimbursed", "wall_s"]


def one(budget: float, seed: int, tmp: Path) -> dict[str, float]:
    cfg = load_config(
        ROOT / "examples/crowdsourcing.toml",
        [*OVERRIDES, f"task.budget={budget}", f"seed={seed}"],
    )
    try:
        s = run_experiment(cfg, out=tmp / f"b{budget}-s{seed}", progress=False)
    except ConfigError as exc:  # nobody joins: no run, nothing spent
        if "joins at these terms" not in str(exc):
            raise
        row = dict.fromkeys(COLUMNS, 0.0)
        return {**row, "budget": budget, "seed": seed, "crowd": 20, "final_accuracy": NAN}
    m = s["market"]
    deposited = budget + cfg.task.cost_budget if cfg.task is not None else 0.0
    return {
        "budget": budget,
        "seed": seed,
        "joined": m["participation"]["joined"],
        "crowd": m["participation"]["crowd"],
        "final_accuracy": s["final_accuracy"],
        "spent": deposited - m["requester_back"],
        "reimbursed": m["reimbursed"],
        "wall_s": s["wall_s"],
    }


def _mean_sd(values: list[float]) -> str:
    values = [v for v in values if v == v]  # accuracy only where somebody joined
    if not values:
        return "no run"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3g} ± {sd:.2g}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budgets", default="50,100,200,400,800,1600")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks")
    args = ap.parse_args()
    budgets = [float(b) for b in args.budgets.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for b in budgets:
            for seed in seeds:
                r = one(b, seed, Path(tmp))
                rows.append(r)
                print(
                    f"budget {b:g} seed {seed}: {r['joined']}/{r['crowd']} joined, "
                    f"accuracy {r['final_accuracy']:.4f}, spent {r['spent']:.1f}",
                    flush=True,
                )
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "participation.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)

    by = {b: [r for r in rows if r["budget"] == b] for b in budgets}
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    for ax, key, label in zip(
        axes,
        ("joined", "final_accuracy", "spent"),
        ("workers who joined", "final accuracy", "tokens spent (rewards + reimbursement)"),
        strict=True,
    ):
        means = [statistics.mean(r[key] for r in by[b]) for b in budgets]  # NaN: no run
        for seed in seeds:
            ax.plot(
                budgets,
                [next(r[key] for r in by[b] if r["seed"] == seed) for b in budgets],
                "o",
                alpha=0.35,
                color="grey",
            )
        ax.plot(budgets, means, "-o", label="mean over seeds")
        ax.set_xscale("log")
        ax.set_xlabel("reward budget (tokens)")
        ax.set_title(label, fontsize=10)
    axes[0].legend(fontsize=8)
    fig.suptitle("What a budget buys (20 workers, rational participation)", fontsize=11)
    fig.tight_layout()
    fig.savefig(args.out / "participation.png", dpi=120)

    lines = [
        "# What a budget buys",
        "",
        "Generated by `benchmarks/participation.py` (settings in its docstring); "
        f"seeds {', '.join(map(str, seeds))}, mean ± standard deviation over seeds (accuracy "
        "over the seeds in which somebody joined; where nobody did, the task never runs).",
        "",
        "| reward budget | joined (of 20) | final accuracy | tokens spent | of which reimbursed |",
        "|---|---|---|---|---|",
    ]
    for b in budgets:
        rs = by[b]
        lines.append(
            f"| {b:g} | {_mean_sd([r['joined'] for r in rs])} | "
            f"{_mean_sd([r['final_accuracy'] for r in rs])} | "
            f"{_mean_sd([r['spent'] for r in rs])} | {_mean_sd([r['reimbursed'] for r in rs])} |"
        )
    lines += ["", "![participation](participation.png)", ""]
    (args.out / "participation.md").write_text("\n".join(lines), encoding="utf-8")
    print(f"wrote {args.out / 'participation.md'}")


if __name__ == "__main__":
    main()
