"""Client-update throughput (issue 11): the vectorised backend, the sequential backend and a
plain PyTorch loop side by side on one workload, 100 and 1,000 clients per round, the ledger on
and off.

Workload (the issue's comparison): scikit-learn's digits, IID, an MLP 64-64-10 (two hidden
layers of 64), batch 32, 1 local epoch, plain SGD (lr 0.05), FedAvg, every client selected each
round, torch on 1 intra-op thread (``threads``' default). A run's updates/s is
``(rounds - 1) · clients / (wall_s - round 0's wall_s)``: round 0 (warm-up, and with the ledger
the deployment and registration) is left out; the chain's work on the last rounds (the ledger
trains ahead of it) and closing the helper processes count. The plain loop is what a user
writes without a framework: per client ``load`` the global vector, a fresh ``torch.optim.SGD``,
``zero_grad / cross_entropy / backward / step`` over the client's ``randperm`` batches, then a
sample-weighted mean; no ledger, no checks (its ledger-on cells are empty).

Each cell is the median of ``--repeats`` runs, alternating configurations; the load average
before and after says how busy the shared machine was. The script FAILS (exit 1) if the
vectorised and the sequential backend disagree on a global model by more than 1e-5 (max
absolute difference); the plain loop's difference (it draws the same permutations, but averages
models rather than deltas) is printed for information. Ends with
``vectorised_speedup=X`` (vectorised ÷ sequential updates/s, 100 clients per round, ledger on);
``--md PATH`` also writes the report there::

    .venv/bin/python benchmarks/throughput.py [--repeats 3] [--md benchmarks/throughput.md]
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from fedledger.config import ExperimentConfig, config_from_dict
from fedledger.engine import run_experiment
from fedledger.federation import build_federation
from fedledger.models import get_flat_params, set_flat_params
from fedledger.protocol.seeds import client_generator

TOL = 1e-5
ROUNDS = {100: 21, 1000: 5}  # per run; round 0 is not timed
BACKENDS = ("sequential", "vectorised")
COMMAND = (
    ".venv/bin/python benchmarks/throughput.py --repeats {repeats} --md benchmarks/throughput.md"
)


def workload(clients: int, *, backend: str, ledger: bool) -> ExperimentConfig:
    return config_from_dict(
        {
            "seed": 0,
            "name": f"throughput-{clients}",
            "data": {"name": "digits", "partition": "iid"},
            "model": {"name": "mlp", "hidden": [64, 64]},
            "federation": {
                "num_clients": clients,
                "clients_per_round": clients,
                "rounds": ROUNDS[clients],
                "local_epochs": 1,
                "batch_size": 32,
                "lr": 0.05,
                "backend": backend,
            },
            "aggregation": {"name": "fedavg"},
            "ledger": {"enabled": ledger},
        }
    )


def engine_run(cfg: ExperimentConfig, out: Path) -> tuple[float, torch.Tensor]:
    """(updates/s, final global model) of one fedledger run."""
    summary = run_experiment(cfg, out=out, progress=False, overwrite=True)
    with (out / "metrics.csv").open(newline="") as f:
        first = float(next(csv.DictReader(f))["wall_s"])
    f_cfg = cfg.federation
    ups = (f_cfg.rounds - 1) * f_cfg.per_round / (float(summary["wall_s"]) - first)
    model = next(iter(load_file(str(out / "model.safetensors")).values()))
    return ups, model


def plain_loop(cfg: ExperimentConfig) -> tuple[float, torch.Tensor]:
    """(updates/s, final global model) of a straightforward per-client PyTorch loop."""
    torch.set_num_threads(cfg.threads)
    fed = build_federation(cfg)  # the same data split and initial model
    model, f = fed.model, cfg.federation
    params = fed.initial_params.clone()
    t_first = 0.0
    for rnd in range(f.rounds):
        if rnd == 1:
            t_first = time.perf_counter()
        total = torch.zeros_like(params)
        weight = 0
        for cid in range(f.num_clients):
            x, y = fed.client_x[cid], fed.client_y[cid]
            set_flat_params(model, params)
            opt = torch.optim.SGD(model.parameters(), lr=f.lr)
            g = client_generator(seed=cfg.seed, round=rnd, client=cid)
            for _ in range(f.local_epochs):
                order = torch.randperm(len(y), generator=g)
                for s in range(0, len(y), f.batch_size):
                    idx = order[s : s + f.batch_size]
                    opt.zero_grad()
                    F.cross_entropy(model(x[idx]), y[idx]).backward()
                    opt.step()
            total += get_flat_params(model) * len(y)
            weight += len(y)
        params = total / weight
    ups = (f.rounds - 1) * f.num_clients / (time.perf_counter() - t_first)
    return ups, params


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f}, {five:.2f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--md", type=Path, default=None, help="also write the report here")
    args = ap.parse_args(argv)
    load_before = _load()
    ups: dict[tuple[int, str, bool], list[float]] = {}
    models: dict[tuple[int, str, bool], torch.Tensor] = {}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fedledger-throughput-") as tmp:
        for rep in range(args.repeats):
            for clients in ROUNDS:
                for ledger in (False, True):
                    for backend in BACKENDS:
                        key = (clients, backend, ledger)
                        cfg = workload(clients, backend=backend, ledger=ledger)
                        u, m = engine_run(cfg, Path(tmp) / f"{clients}-{backend}-{ledger}")
                        ups.setdefault(key, []).append(u)
                        models[key] = m
                        print(
                            f"  run {rep + 1}: {clients} clients, {backend}, ledger "
                            f"{'on' if ledger else 'off'}: {u:,.0f} updates/s",
                            file=sys.stderr,
                        )
                key = (clients, "plain", False)
                u, m = plain_loop(workload(clients, backend="sequential", ledger=False))
                ups.setdefault(key, []).append(u)
                models[key] = m
    wall = time.perf_counter() - t0
    med = {k: statistics.median(v) for k, v in ups.items()}
    lines = [
        f"machine: {os.cpu_count()} CPU cores (shared: other processes ran), CPython "
        f"{platform.python_version()}, torch {torch.__version__}, 1 intra-op thread; load "
        f"average (1, 5 min) {load_before} before, {_load()} after; {wall:.0f} s in all",
        f"workload: digits IID, MLP 64-64-10, batch 32, 1 epoch, SGD lr 0.05, FedAvg, every "
        f"client each round; rounds per run {ROUNDS} (round 0 untimed); medians of "
        f"{args.repeats} runs",
        "",
        f"{'clients/round':>13} {'ledger':>6} {'sequential':>11} {'vectorised':>11} "
        f"{'plain loop':>11} {'vec/seq':>8} {'vec/plain':>9} {'seq/plain':>9} {'vec s/round':>11} "
        f"{'max |Δ| vec-seq':>16}",
    ]
    worst = 0.0
    for clients in ROUNDS:
        plain = med[(clients, "plain", False)]
        for ledger in (False, True):
            s, v = med[(clients, "sequential", ledger)], med[(clients, "vectorised", ledger)]
            diff = float(
                (models[(clients, "vectorised", ledger)] - models[(clients, "sequential", ledger)])
                .abs()
                .max()
            )
            worst = max(worst, diff)
            p = f"{plain:>11,.0f}" if not ledger else f"{'-':>11}"
            lines.append(
                f"{clients:>13} {'on' if ledger else 'off':>6} {s:>11,.0f} {v:>11,.0f} {p} "
                f"{v / s:>7.2f}x {v / plain:>8.2f}x {s / plain:>8.2f}x {clients / v:>11.3f} "
                f"{diff:>16.2e}"
            )
        pdiff = float(
            (models[(clients, "plain", False)] - models[(clients, "sequential", False)]).abs().max()
        )
        lines.append(f"{'':>13} plain loop vs sequential (informational): max |Δ| {pdiff:.2e}")
    speedup = med[(100, "vectorised", True)] / med[(100, "sequential", True)]
    ok = worst <= TOL
    lines += [
        "",
        f"vectorised and sequential global models agree within {TOL:g}: "
        f"{'yes' if ok else 'NO'} (worst {worst:.2e})",
        f"vectorised_speedup={speedup:.2f}",
    ]
    report = "\n".join(lines)
    print(report)
    if args.md is not None:
        args.md.write_text(
            "# Client-update throughput: vectorised, sequential and a plain PyTorch loop\n\n"
            "Generated by `benchmarks/throughput.py` (do not edit by hand). Re-run with:\n\n"
            f"```bash\n{COMMAND.format(repeats=args.repeats)}\n```\n\n"
            "See the script's docstring for what each number measures. updates/s are client "
            "updates per second of a whole run's rounds (training, and with the ledger the "
            "signing, checks and chain).\n\n"
            f"```text\n{report}\n```\n",
            encoding="utf-8",
        )
    if not ok:
        print(f"FAIL: global models differ by {worst:.2e} > {TOL:g}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
