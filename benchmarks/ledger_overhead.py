"""Ledger overhead: the quickstart with 100 clients per round, with and without the ledger.

Both variants run in this one process, interleaved (plain, ledger, plain, ledger, ...) after a
warm-up, so that they see the same machine. Prints the wall times, the CPU time of the ledger
process (which runs beside the trainer, on another core), the gas per client-round, and ends
with ``ratio=X`` (ledger / no-ledger wall time).

    .venv/bin/python benchmarks/ledger_overhead.py [--rounds 30] [--repeats 2]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
from pathlib import Path

from fedledger.config import load_config
from fedledger.engine import run_experiment

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument(
        "--set", dest="overrides", action="append", default=[], help="extra config override"
    )
    args = ap.parse_args()
    base = [
        *args.overrides,
        f"federation.num_clients={args.clients}",
        f"federation.clients_per_round={args.clients}",
        f"federation.rounds={args.rounds}",
        "name='ledger-overhead'",
    ]
    times: dict[bool, list[float]] = {False: [], True: []}
    child_cpu: list[float] = []
    hashes: dict[bool, str] = {}
    gas = tx = 0
    with tempfile.TemporaryDirectory() as tmp:
        warm = load_config(ROOT / "examples/quickstart.toml", [*base, "federation.rounds=1"])
        run_experiment(warm, out=Path(tmp) / "warm", progress=False)
        for rep in range(args.repeats):
            for ledger in (False, True):
                cfg = load_config(
                    ROOT / "examples/quickstart.toml",
                    [*base, f"ledger.enabled={str(ledger).lower()}"],
                )
                cpu0 = _children_cpu()
                s = run_experiment(cfg, out=Path(tmp) / f"{ledger}-{rep}", progress=False)
                times[ledger].append(s["wall_s"])
                if ledger:
                    child_cpu.append(_children_cpu() - cpu0)
                hashes[ledger] = s["global_model_hash"]
                if ledger:
                    gas, tx = s["ledger"]["gas_used"], s["ledger"]["tx_count"]
                print(
                    f"  repeat {rep} ledger={ledger!s:<5} wall_s={s['wall_s']:.3f} acc={s['final_accuracy']:.4f}"
                )
    plain, chain = statistics.median(times[False]), statistics.median(times[True])
    client_rounds = args.clients * args.rounds
    print(
        f"clients_per_round={args.clients} rounds={args.rounds} repeats={args.repeats} overrides={args.overrides}"
    )
    print(f"no_ledger_s_per_client_round={plain / client_rounds * 1e3:.3f}ms")
    print(f"ledger_added_s_per_client_round={(chain - plain) / client_rounds * 1e3:.3f}ms")
    print(f"no_ledger_wall_s={plain:.3f}")
    print(f"ledger_wall_s={chain:.3f}")
    print(f"same_global_model_hash={hashes[False] == hashes[True]}")
    # the ledger runs in a forked process on another core: its CPU time is the cost that the
    # wall-time ratio does not show
    print(f"ledger_process_cpu_s={statistics.median(child_cpu):.3f}")
    print(f"transactions={tx} gas_total={gas} gas_per_client_round={gas / client_rounds:.0f}")
    print(f"ratio={chain / plain:.3f}")


def _children_cpu() -> float:
    """CPU seconds (user + system) of this process's finished children."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


if __name__ == "__main__":
    main()
