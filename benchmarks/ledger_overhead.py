"""Ledger overhead: the quickstart with and without the ledger, side by side, at 10 and 100
clients per round.

With the ledger on, each client's update is signed on its device and checked by the aggregator
on receipt (the devices worker), and every round is recorded on the embedded chain in protocol
order (the ledger process). Both variants run in this one process, interleaved (plain, ledger,
plain, ledger, ...) after a warm-up, so that they see the same machine; the run fails if the
two disagree on the global model. Prints per setting: the wall times and their ratio, the CPU
seconds the helper processes spent per client-round (their cost, which the wall-time ratio
does not show when a spare core absorbs it), and gas per client-round; ends with ``ratio=X``
for the largest setting. "pair ratios" is the range of each repeat's ledger run over the plain
run just before it: how noisy the machine was while the medians were taken.

    .venv/bin/python benchmarks/ledger_overhead.py [--clients 10,100] [--rounds 30] [--repeats 3]
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import statistics
import tempfile
from pathlib import Path

from fedledger.config import load_config
from fedledger.engine import run_experiment

ROOT = Path(__file__).resolve().parents[1]


def _children_cpu() -> float:
    """CPU seconds (user + system) of this process's finished children."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _settle() -> None:
    """Wait until the helpers of earlier runs have exited (a run returns without waiting for
    them), so that every run starts on an otherwise idle machine and their CPU is counted."""
    for proc in multiprocessing.active_children():
        proc.join()


def measure(clients: int, *, rounds: int, repeats: int, overrides: list[str], tmp: Path) -> dict[str, float]:
    base = [
        *overrides,
        f"federation.num_clients={clients}",
        f"federation.clients_per_round={clients}",
        f"federation.rounds={rounds}",
        "name='ledger-overhead'",
    ]
    warm = load_config(ROOT / "examples/quickstart.toml", [*base, "federation.rounds=1"])
    run_experiment(warm, out=tmp / f"warm-{clients}", progress=False)
    times: dict[bool, list[float]] = {False: [], True: []}
    cpu: list[float] = []
    hashes: dict[bool, str] = {}
    gas = 0
    for rep in range(repeats):
        for ledger in (False, True):
            cfg = load_config(
                ROOT / "examples/quickstart.toml", [*base, f"ledger.enabled={str(ledger).lower()}"]
            )
            _settle()
            cpu0 = _children_cpu()
            s = run_experiment(cfg, out=tmp / f"{clients}-{ledger}-{rep}", progress=False)
            times[ledger].append(s["wall_s"])
            hashes[ledger] = s["global_model_hash"]
            if ledger:
                _settle()
                cpu.append(_children_cpu() - cpu0)
                gas = s["ledger"]["gas_used"]
    if hashes[False] != hashes[True]:
        raise SystemExit(f"{clients} clients: the runs disagree on the global model; no comparison")
    plain, chain = statistics.median(times[False]), statistics.median(times[True])
    client_rounds = clients * rounds
    return {
        "plain_s": plain,
        "ledger_s": chain,
        "ratio": chain / plain,
        "helper_cpu_ms": statistics.median(cpu) / client_rounds * 1e3,
        "gas": gas / client_rounds,
        # each repeat's ledger run against the plain run just before it: the noise the
        # median has to see through
        "pairs": [b / a for a, b in zip(times[False], times[True], strict=True)],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", default="10,100", help="clients per round, comma-separated")
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="config override")
    args = ap.parse_args()
    settings = [int(c) for c in args.clients.split(",")]
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for clients in settings:
            rows[clients] = measure(
                clients, rounds=args.rounds, repeats=args.repeats, overrides=args.overrides, tmp=Path(tmp)
            )
    print(f"rounds={args.rounds} repeats={args.repeats} overrides={args.overrides} (medians)")
    head = f"{'clients/round':>14}{'no ledger s':>13}{'ledger s':>10}{'ratio':>8}"
    head += f"{'helper CPU ms/client-round':>28}{'gas/client-round':>18}{'pair ratios':>16}"
    print(head)
    for clients, r in rows.items():
        pairs = f"{min(r['pairs']):.3f}-{max(r['pairs']):.3f}"
        print(
            f"{clients:>14}{r['plain_s']:>13.3f}{r['ledger_s']:>10.3f}{r['ratio']:>8.3f}"
            f"{r['helper_cpu_ms']:>28.3f}{r['gas']:>18.0f}{pairs:>16}"
        )
    print(f"ratio={rows[max(settings)]['ratio']:.3f}")


if __name__ == "__main__":
    main()
