"""Validate fedledger.netsim against analysis; print the tables, write the markdown and plots.

    .venv/bin/python benchmarks/netsim_validation.py            # everything (~15 s)
    .venv/bin/python benchmarks/netsim_validation.py --only forks optimum

Writes benchmarks/netsim_validation.md (only when every section ran) and docs/img/netsim_*.png.
Every number comes from the BlockFL setting in examples/netsim_blockfl.toml unless a section
says otherwise; every random draw is seeded.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from fedledger.cli.netsim import read_network_section  # noqa: E402
from fedledger.netsim import NetworkModel  # noqa: E402
from fedledger.netsim.analysis import (  # noqa: E402
    blockfl_latency,
    blockfl_optimal_rate,
    blockfl_terms,
    empirical_minimum,
)
from fedledger.netsim.channel import link_rate  # noqa: E402
from fedledger.netsim.config import NetworkConfig, load_network_config  # noqa: E402
from fedledger.netsim.consensus import CONSENSUS  # noqa: E402
from fedledger.netsim.consensus.pbft import check_faults, pbft_latency, pbft_messages  # noqa: E402
from fedledger.netsim.devices import DevicePopulation, build_population  # noqa: E402
from fedledger.netsim.hierarchy import compare_layered  # noqa: E402
from fedledger.netsim.plots import plot_breakdown, plot_latency_vs_rate  # noqa: E402
from fedledger.netsim.roles import role_outcome  # noqa: E402
from fedledger.netsim.rounds import simulate_rounds  # noqa: E402
from fedledger.netsim.sweep import run_point  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "netsim_blockfl.toml"
IMG = ROOT / "docs" / "img"
MD = ROOT / "benchmarks" / "netsim_validation.md"
CMD = ".venv/bin/python benchmarks/netsim_validation.py --only"
TIERS = [
    {"name": "phone", "share": 0.7, "flops": 1e9, "distance_m": [20, 300]},
    {"name": "vehicle", "share": 0.25, "flops": 1e10, "distance_m": [20, 300]},
    {"name": "edge_server", "share": 0.05, "flops": 1e12, "distance_m": [5, 20]},
]
Section = tuple[str, str, list[str], str]  # title, test, table lines, verdict


def example(**over: Any) -> tuple[NetworkConfig, int]:
    section, seed = read_network_section(EXAMPLE)
    return load_network_config({**section, **over}), seed


def table(head: list[str], rows: list[list[Any]]) -> list[str]:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4g}" if abs(v) < 1e5 else f"{v:,.0f}"
        return str(v)

    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return out


def pct(x: float) -> str:
    return f"{100 * x:+.2f}%"


def passed(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def mean_round(cfg: NetworkConfig, pop: DevicePopulation, seed: int, rounds: int) -> float:
    b = simulate_rounds(
        cfg, pop, list(range(cfg.num_devices)), rounds=rounds, update_bytes=float(cfg.update_bytes),
        flops_per_sample=cfg.flops_per_sample, samples=cfg.samples_per_device,
        epochs=cfg.local_epochs, rng=np.random.default_rng([seed, 2]),
    )  # fmt: skip
    return float(np.mean(b.round_s))


def terms_for(cfg: NetworkConfig, pop: DevicePopulation) -> Any:
    return blockfl_terms(
        cfg, pop, list(range(cfg.num_devices)), update_bytes=float(cfg.update_bytes),
        flops_per_sample=cfg.flops_per_sample, samples=cfg.samples_per_device,
        epochs=cfg.local_epochs,
    )  # fmt: skip


def sec_interval() -> Section:
    rows, worst = [], 0.0
    for rate in (0.05, 0.5, 2.0):
        cfg, seed = example(block_rate=rate, blocks=50_000)
        s = CONSENSUS.get("pow").simulate_chain(cfg, np.random.default_rng([seed, 1]))
        err = s.mean_block_interval_s * rate - 1.0
        worst = max(worst, abs(err))
        rows.append([rate, s.blocks, 1.0 / rate, s.mean_block_interval_s, pct(err)])
    head = ["lambda (1/s)", "blocks", "1/lambda (s)", "mean interval, all blocks (s)", "error"]
    verdict = (
        f"worst error {100 * worst:.2f}% (limit 2%): {passed(worst < 0.02)} "
        "(one seed for every rate: common random numbers, hence the same relative error)"
    )
    return (
        "Mean block interval vs 1/lambda",
        "test_netsim_pow.py::test_mean_block_interval_within_2_percent",
        table(head, rows),
        verdict,
    )


def sec_forks() -> Section:
    rows, worst = [], 0.0
    model = CONSENSUS.get("pow")
    for rate in (0.1, 0.25, 0.5, 1.0, 2.0):
        cfg, seed = example(block_rate=rate, blocks=20_000)
        s = model.simulate_chain(cfg, np.random.default_rng([seed, 1]))
        ana = model.fork_probability(cfg, s.propagation_delay_s)
        err = s.fork_rate / ana - 1.0
        worst = max(worst, abs(err))
        rows.append(
            [
                rate,
                s.blocks,
                rate * s.propagation_delay_s,
                ana,
                s.fork_rate,
                pct(err),
                s.tree_fork_rate,
                s.orphan_rate,
            ]
        )
    head = [
        "lambda",
        "blocks",
        "lambda*T_bp",
        "p_fork analytic",
        "fork rate simulated",
        "error",
        "tree branches",
        "orphans",
    ]
    verdict = (
        f"worst error {100 * worst:.2f}% (limit 10%): {passed(worst < 0.10)}. "
        "The fork rate counts blocks during whose propagation another miner found a block "
        "(BlockFL's event). The block tree's branch and orphan shares agree with p_fork only "
        "while lambda*T_bp is small (first order); at lambda*T_bp ~ 1 they fall well below it, "
        "because later blocks often extend a branch that is already losing."
    )
    return (
        "Fork rate vs BlockFL's p_fork",
        "test_netsim_pow.py::test_fork_rate_within_10_percent_of_analytic",
        table(head, rows),
        verdict,
    )


def sec_latency() -> Section:
    rows, worst = [], 0.0
    cases: list[tuple[str, dict[str, Any]]] = [
        (f"lambda={r}, {p}", {"block_rate": r, "fork_policy": p})
        for p in ("repeat_round", "remine")
        for r in (0.1, 0.5, 1.5)
    ]
    cases.append(("lambda=0.8, 4 blocks per round", {"block_rate": 0.8, "block_size": 30}))
    for name, over in cases:
        cfg, seed = example(**over)
        pop = build_population(cfg, np.random.default_rng([seed, 0]))
        sim = mean_round(cfg, pop, seed, 5_000)
        ana = blockfl_latency(cfg.block_rate, terms_for(cfg, pop))
        err = sim / ana - 1.0
        worst = max(worst, abs(err))
        rows.append([name, 5_000, ana, sim, pct(err)])
    head = ["case", "rounds", "analytic E[T] (s)", "simulated mean (s)", "error"]
    verdict = (
        f"worst error {100 * worst:.2f}% (limit 5%): {passed(worst < 0.05)}. "
        "Assumptions: homogeneous devices, no fading or frame errors, equal miners."
    )
    return (
        "Round latency vs BlockFL's model",
        "test_netsim_analysis.py::test_round_latency_within_5_percent",
        table(head, rows),
        verdict,
    )


def sec_optimum() -> Section:
    cfg, seed = example()
    pop = build_population(cfg, np.random.default_rng([seed, 0]))
    terms = terms_for(cfg, pop)
    rates = np.geomspace(0.1, 2.0, 27)
    sim = [
        mean_round(cfg.model_copy(update={"block_rate": float(r)}), pop, seed, 20_000)
        for r in rates
    ]
    ana = [blockfl_latency(float(r), terms) for r in rates]
    a_opt, s_opt = blockfl_optimal_rate(terms), empirical_minimum(rates, sim)
    err = s_opt / a_opt - 1.0
    rows = [
        {"block_rate": float(r), "round_latency_s": s, "round_latency_analytic_s": a}
        for r, s, a in zip(rates, sim, ana, strict=True)
    ]
    plot_latency_vs_rate(rows, IMG / "netsim_blockfl_latency.png", optimum=(a_opt, s_opt),
                         title="BlockFL: round latency vs block arrival rate (20,000 rounds/point)")  # fmt: skip
    i = int(np.argmin(sim))
    lines = table(
        ["", "lambda* (blocks/s)", "E[T] at lambda* (s)"],
        [
            ["analytic (closed form)", a_opt, blockfl_latency(a_opt, terms)],
            ["simulated (parabola through grid minimum)", s_opt, sim[i]],
        ],
    )
    lines += [
        "",
        f"Latency at the ends of the grid: {sim[0]:.3g} s at lambda={rates[0]:.3g}, {sim[-1]:.3g} s at lambda={rates[-1]:.3g} (U-shaped).",
    ]
    lines += ["", "![latency vs block rate](../docs/img/netsim_blockfl_latency.png)"]
    verdict = f"optimum error {pct(err)} (limit 10%): {passed(abs(err) < 0.10)}"
    return (
        "BlockFL's U-curve and optimal block arrival rate",
        "test_netsim_analysis.py::test_latency_is_u_shaped_and_simulated_optimum_within_10_percent",
        lines,
        verdict,
    )


def sec_tps() -> Section:
    sizes = [25, 50, 100, 200, 400, 800, 1600, 3200]
    rates = [0.1, 0.2, 0.5, 1.0, 2.0, 4.0]
    grid = np.zeros((len(sizes), len(rates)))
    orphans = np.zeros_like(grid)
    for i, b in enumerate(sizes):
        for j, r in enumerate(rates):
            cfg, seed = example(block_size=b, block_rate=r, tx_bytes=2_000, blocks=20_000)
            st = CONSENSUS.get("pow").simulate_chain(cfg, np.random.default_rng([seed, 1]))
            grid[i, j], orphans[i, j] = st.tps, st.orphan_rate
    link_tx = link_rate(cfg.miner_link) / (8 * 2_000)  # tx/s the miner link can carry
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
    for j, r in enumerate(rates):
        a1.plot(sizes, grid[:, j], "o-", ms=3, label=f"interval {1 / r:g} s")
    for i, b in enumerate(sizes):
        a2.plot([1 / r for r in rates], grid[i, :], "o-", ms=3, label=f"{b} tx/block")
    a1.set(xlabel="block size (tx of 2 kB)", ylabel="TPS (confirmed tx/s)", xscale="log")
    a1.set_xticks(sizes, [str(b) for b in sizes], fontsize=7)
    a1.minorticks_off()
    a2.set(xlabel="mean block interval (s)", ylabel="TPS", xscale="log")
    for ax in (a1, a2):
        ax.axhline(link_tx, ls="--", c="grey", lw=1, label="miner link capacity")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    fig.suptitle("PoW throughput vs block size and block interval (10 miners, 13.3 Mbit/s links)")
    fig.tight_layout()
    fig.savefig(IMG / "netsim_tps.png", dpi=110)
    plt.close(fig)
    rows = [
        [b]
        + [
            f"{grid[i, j]:.1f} ({100 * orphans[i, j]:.0f}%){' *' if grid[i, j] > link_tx else ''}"
            for j in range(len(rates))
        ]
        for i, b in enumerate(sizes)
    ]
    head = ["block size \\ mean interval"] + [f"{1 / r:g} s" for r in rates]
    lines = table(head, rows)
    lines += [
        "",
        f"Cells: TPS (share of orphaned blocks); * = above the miner link's {link_tx:.0f} tx/s.",
        "",
        "![TPS](../docs/img/netsim_tps.png)",
    ]
    verdict = (
        "TPS grows with block size and block rate, with diminishing returns once a block's "
        "propagation time nears the interval (lambda*T_bp >~ 1): orphans take most blocks. Cells "
        "marked * lie outside the model's validity: it lets blocks propagate in parallel without "
        "sharing link capacity and lets a miner keep extending its own unseen blocks, so it "
        "overstates throughput there."
    )
    return (
        "TPS vs block size and block interval (transactions of 2 kB)",
        "test_netsim_pow.py::test_tps_grows_with_block_size_and_falls_with_interval",
        lines,
        verdict,
    )


def sec_pbft() -> Section:
    cfg, seed = example(
        consensus="pbft",
        pbft={"jitter_s": 0.01},
        miner_link={"bandwidth_hz": 2e6, "snr_db": 20.0, "latency_s": 0.02},
    )
    rate = link_rate(cfg.miner_link)
    rows = []
    ns = [4, 7, 10, 16, 25, 31, 46, 64, 100]
    lat = []
    for n in ns:
        f = check_faults(n, None)
        for label, size in (("2 MB block", float(cfg.block_bytes)), ("1 kB block", 1_000.0)):
            got, fin = pbft_latency(
                n,
                np.full(200, size),
                message_bytes=256,
                rate_bps=rate,
                latency_s=0.02,
                jitter_s=0.01,
                rng=np.random.default_rng([seed, n]),
            )
            rows.append([n, f, pbft_messages(n), label, float(np.mean(got)), float(np.mean(fin))])
            lat.append((n, label, float(np.mean(fin))))
    fig, ax = plt.subplots(figsize=(6.4, 4))
    for label in ("2 MB block", "1 kB block"):
        pts = [(n, v) for n, lab, v in lat if lab == label]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", ms=3, label=label)
    ax.set(
        xlabel="committee size n (f = floor((n-1)/3))",
        ylabel="latency to finality (s)",
        yscale="log",
        title="PBFT latency vs committee size",
    )
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(IMG / "netsim_pbft.png", dpi=110)
    plt.close(fig)
    head = ["n", "f", "messages 2n(n-1)", "block", "2f+1 hold block (s)", "final (s)"]
    lines = table(head, rows) + ["", "![PBFT](../docs/img/netsim_pbft.png)"]
    verdict = (
        f"links {rate / 1e6:.1f} Mbit/s, 20 ms + Exp(10 ms) per message, 256-byte votes, 200 "
        "decisions per point. Every replica sends each phase's message to all others in turn, "
        "so messages grow as n^2 and latency about linearly in n (the primary's block upload "
        "dominates big blocks)."
    )
    return (
        "PBFT latency vs committee size",
        "test_netsim_consensus.py::test_pbft_latency_grows_with_committee_and_survives_f_crashes",
        lines,
        verdict,
    )


def sec_layered() -> Section:
    cfg, seed = example(num_devices=1_000)
    pop = build_population(cfg, np.random.default_rng([seed, 0]))
    res = compare_layered(
        cfg, pop, [1, 2, 4, 8, 16, 32], rounds=20, rng=np.random.default_rng([seed, 5])
    )
    rows = [
        [
            "flat" if r.regions == 1 else r.regions,
            r.round_latency_s,
            r.updates_per_s,
            r.main_chain_tx,
            r.fork_rate,
        ]
        for r in res
    ]
    fig, ax = plt.subplots(figsize=(6.4, 4))
    ax.plot([r.regions for r in res], [r.round_latency_s for r in res], "o-")
    ax.set(
        xscale="log",
        xlabel="regions (1 = flat chain)",
        ylabel="round latency (s)",
        title="Layered chains: 1,000 devices",
    )
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(IMG / "netsim_layered.png", dpi=110)
    plt.close(fig)
    head = ["regions", "round latency (s)", "updates/s", "main-chain tx per round", "fork rate"]
    lines = table(head, rows) + ["", "![layered](../docs/img/netsim_layered.png)"]
    flat, best = res[0], min(res, key=lambda r: r.round_latency_s)
    verdict = (
        f"main chain: lambda={cfg.block_rate}/s, 100 updates (2 MB) per block; regional chains: "
        f"lambda={cfg.hierarchy.regional_block_rate}/s on 10 MHz links, one 300-byte anchor per "
        f"region. Best: {best.regions} regions, {flat.round_latency_s / best.round_latency_s:.1f}x "
        "faster than flat."
    )
    return (
        "Layered vs flat chain",
        "test_netsim_annotate.py::test_layered_chains_beat_a_flat_chain",
        lines,
        verdict,
    )


def sec_roles() -> Section:
    cfg = load_network_config({"tiers": TIERS})
    pop = build_population(cfg, np.random.default_rng(0), 1_000)
    rows = []
    for frac in (0.05, 0.1, 0.2, 0.5):
        for rule in ("richest", "random"):
            o = role_outcome(
                pop, frac, samples=200, blocks=20_000, rule=rule, rng=np.random.default_rng(1)
            )
            rows.append(
                [
                    frac,
                    rule,
                    o.miners,
                    o.hash_power_flops / 1e12,
                    o.training_samples,
                    o.miner_gini,
                    o.miner_top10_share,
                    o.reward_gini,
                    o.top10_share,
                ]
            )
    head = [
        "miner share",
        "who mines",
        "miners",
        "hash power (TFLOP/s)",
        "training samples",
        "Gini of blocks (miners)",
        "top-10% miners' blocks",
        "Gini of rewards (all)",
        "top-10% devices' rewards",
    ]
    verdict = (
        "1,000 devices: 70% phones (1 GFLOP/s), 25% vehicles (10), 5% edge servers (1,000); "
        "half the rewards pay blocks, half pay data. Whenever edge servers mine next to phones "
        "and vehicles (random rows; richest at 50%) the top 10% of miners win 92-95% of the "
        "blocks; beyond the edge servers, more miners add little hash power (50 -> 53 TFLOP/s) "
        "but remove training data (190k -> 100k samples)."
    )
    return (
        "Roles: mining vs training and reward concentration",
        "test_netsim_annotate.py::test_compute_rich_miners_concentrate_rewards",
        table(head, rows),
        verdict,
    )


def sec_selection() -> Section:
    rows = []
    for deadline in (0.3, 1.0):
        net = NetworkModel.from_config(
            {"tiers": TIERS, "uplink": {"fading": "rayleigh"}, "deadline_s": deadline},
            seed=3,
            num_devices=500,
        )
        samples = np.full(500, 500)
        for policy in ("random", "deadline_aware", "bandwidth_aware"):
            phase, got, total = 0.0, 0.0, 0.0
            for rnd in range(50):
                c = net.candidates(
                    rnd, update_bytes=20_000, flops_per_sample=1e6, samples=samples, epochs=1
                )
                who = net.select(c, 50, round=rnd, policy=policy)
                t = net.simulate_round(rnd, who, 20_000, 1e6, samples[who], 1)
                phase += t["net_train_s"] + t["net_upload_s"] + t["net_wait_s"]
                got += t["net_delivered"]
                total += t["net_round_s"]
            rows.append([deadline, policy, phase / 50, got / 50, total / 50])
    head = [
        "deadline (s)",
        "policy",
        "train+upload phase (s)",
        "updates delivered /50",
        "round incl. consensus (s)",
    ]
    verdict = (
        "Network side only (500 devices of three tiers, 50 per round, 50 rounds; times are per "
        "round, fork repeats included). With a 0.3 s deadline random selection loses most "
        "phones' updates and always waits for the deadline; deadline-aware delivers all 50 "
        "sooner, at the price of bigger blocks (longer verification and propagation). Whether "
        "a policy reaches the target accuracy sooner needs the training engine (docs/netsim.md)."
    )
    return (
        "Selection policies under a deadline (network side)",
        "test_netsim_annotate.py::test_deadline_aware_rounds_are_shorter_than_random",
        table(head, rows),
        verdict,
    )


def breakdown_plot() -> None:
    rows = []
    for rate in (0.1, 0.2, 0.3, 0.45, 0.7, 1.0, 1.5, 2.0):
        cfg, seed = example(block_rate=rate, blocks=2_000, rounds=5_000)
        rows.append(run_point(cfg, seed))
    plot_breakdown(rows, IMG / "netsim_breakdown.png", label_key="block_rate")


SECTIONS: dict[str, Callable[[], Section]] = {
    "interval": sec_interval,
    "forks": sec_forks,
    "latency": sec_latency,
    "optimum": sec_optimum,
    "tps": sec_tps,
    "pbft": sec_pbft,
    "layered": sec_layered,
    "roles": sec_roles,
    "selection": sec_selection,
}


def main() -> None:
    ap = argparse.ArgumentParser(description="Validate fedledger.netsim against analysis.")
    ap.add_argument("--only", nargs="*", choices=sorted(SECTIONS), default=None)
    args = ap.parse_args()
    IMG.mkdir(parents=True, exist_ok=True)
    chosen = args.only or list(SECTIONS)
    md = [
        "# netsim validation",
        "",
        "Generated by `.venv/bin/python benchmarks/netsim_validation.py` (all sections, about 15 s "
        "on 2 cores); each section names the command that regenerates it alone and the "
        "test that checks it. Setting: `examples/netsim_blockfl.toml` (BlockFL, Kim et al. 2019: "
        "100 devices, 10 equal PoW miners, 20 kB updates, one 2 MB block per round) unless a "
        "section says otherwise. CLI: `fedledger netsim examples/netsim_blockfl.toml --sweep "
        "network.block_rate=0.05:2.0:20 --out runs/netsim`.",
        "",
    ]
    for name in chosen:
        t0 = time.perf_counter()
        title, test, lines, verdict = SECTIONS[name]()
        took = time.perf_counter() - t0
        block = [
            f"## {title}",
            "",
            f"`{CMD} {name}` · test `tests/{test}` · {took:.1f} s",
            "",
            *lines,
            "",
            f"**{verdict}**",
            "",
        ]
        print("\n".join(block))
        md += block
    if args.only is None:
        breakdown_plot()
        md += ["## Latency breakdown", "", "![breakdown](../docs/img/netsim_breakdown.png)", ""]
        MD.write_text("\n".join(md), encoding="utf-8")
        print(f"wrote {MD.relative_to(ROOT)} and docs/img/netsim_*.png", file=sys.stderr)


if __name__ == "__main__":
    main()
