"""Audit speed: the quickstart's run and its audit side by side (issue 10: an audit takes at
most half the wall time of the run it checks).

Both commands as a user types them, each a fresh process timed from outside (interpreter
start, imports and exit included), alternating after an untimed warm-up pair:
``fedledger run examples/quickstart.toml --out R_k --quiet`` (ledger on, the embedded chain),
then ``fedledger audit R_k --quiet`` of that run, then the next run, ... The medians give the
ratio audit / run, PASS when it is at most 0.5. Also printed:

* the audit's start-up: ``fedledger audit`` of an empty directory (interpreter, CLI, torch and
  web3 loaded, then "no config.toml"), as a share of the audit's median; py-evm loads later,
  with the chain, and counts as the audit's work;
* in process, without start-up: the run's own ``wall_s`` (summary.json) and ``audit_run`` in
  this process once its modules are loaded: the work itself;
* the load average before and after, and each pair's audit / run: the machine is shared, and
  the spread says how noisy it was while the medians were taken.

Every audit must pass and every run must give the same global model, or the script stops.
Ends with ``audit_over_run=X``; ``--md PATH`` also writes the report there::

    .venv/bin/python benchmarks/audit_speed.py [--repeats 7] [--md benchmarks/audit_speed.md]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from fedledger.audit import audit_run

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "examples" / "quickstart.toml"
FEDLEDGER = [sys.executable, "-c", "import sys; from fedledger.cli.main import main; sys.exit(main())"]
TARGET = 0.5


def _timed(args: list[str], *, ok: set[int]) -> tuple[float, subprocess.CompletedProcess[str]]:
    t = time.perf_counter()
    proc = subprocess.run([*FEDLEDGER, *args], capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t
    if proc.returncode not in ok:
        raise SystemExit(f"fedledger {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    return wall, proc


def _run(out: Path) -> tuple[float, dict[str, object]]:
    wall, _ = _timed(["run", str(CONFIG), "--out", str(out), "--quiet"], ok={0})
    return wall, json.loads((out / "summary.json").read_text(encoding="utf-8"))


def _audit(out: Path) -> float:
    wall, proc = _timed(["audit", str(out), "--quiet"], ok={0})
    if "OK" not in proc.stdout:
        raise SystemExit(f"the audit of {out} did not report OK:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return wall


def measure(repeats: int, tmp: Path) -> dict[str, object]:
    load_before = os.getloadavg()
    _run(tmp / "warm")
    _audit(tmp / "warm")
    runs: list[float] = []
    audits: list[float] = []
    inner: list[float] = []
    hashes = set()
    outs = []
    for k in range(repeats):
        out = tmp / f"run-{k}"
        wall, summary = _run(out)
        runs.append(wall)
        inner.append(float(summary["wall_s"]))  # type: ignore[arg-type]
        hashes.add(summary["global_model_hash"])
        audits.append(_audit(out))
        outs.append(out)
    if len(hashes) != 1:
        raise SystemExit(f"the runs disagree on the global model ({sorted(hashes)}): no comparison")
    empty = tmp / "empty"
    empty.mkdir()
    startup = [_timed(["audit", str(empty), "--quiet"], ok={1})[0] for _ in range(repeats)]
    audit_run(outs[0])  # loads what the first audit in a process loads (py-evm, the model)
    in_process = []
    for out in outs:
        t = time.perf_counter()
        report = audit_run(out)
        in_process.append(time.perf_counter() - t)
        if not report.ok:
            raise SystemExit(f"in-process audit of {out} failed:\n{report.describe()}")
    return {
        "run_s": statistics.median(runs),
        "audit_s": statistics.median(audits),
        "startup_s": statistics.median(startup),
        "run_inner_s": statistics.median(inner),
        "audit_inner_s": statistics.median(in_process),
        "pairs": [a / r for r, a in zip(runs, audits, strict=True)],
        "hash": hashes.pop(),
        "load": (load_before, os.getloadavg()),
    }


def render(m: dict[str, object], *, repeats: int) -> list[str]:
    run_s, audit_s = float(m["run_s"]), float(m["audit_s"])  # type: ignore[arg-type]
    startup_s = float(m["startup_s"])  # type: ignore[arg-type]
    inner_run, inner_audit = float(m["run_inner_s"]), float(m["audit_inner_s"])  # type: ignore[arg-type]
    pairs: list[float] = m["pairs"]  # type: ignore[assignment]
    (b1, b5, _), (a1, a5, _) = m["load"]  # type: ignore[misc]
    ratio = audit_s / run_s
    return [
        f"machine: {os.cpu_count()} CPU cores, {platform.python_implementation()} "
        f"{platform.python_version()}, torch {torch.__version__}; load average (1, 5 min) "
        f"{b1:.2f}, {b5:.2f} before, {a1:.2f}, {a5:.2f} after (other processes share the cores)",
        f"quickstart ({CONFIG.relative_to(ROOT)}, ledger on, embedded chain), global model "
        f"{str(m['hash'])[:16]}..., {repeats} repetitions alternating run, audit (medians):",
        f"  fedledger run      {run_s:7.2f} s",
        f"  fedledger audit    {audit_s:7.2f} s   of which start-up {startup_s:.2f} s "
        f"({startup_s / audit_s:.0%}: `fedledger audit` of an empty directory)",
        f"  pair ratios        {min(pairs):.3f}-{max(pairs):.3f}",
        f"  in process, without start-up: run wall_s {inner_run:.2f} s, audit_run "
        f"{inner_audit:.2f} s (ratio {inner_audit / inner_run:.3f})",
        f"audit / run = {ratio:.3f}: {'PASS' if ratio <= TARGET else 'FAIL'} (target <= {TARGET})",
        f"audit_over_run={ratio:.3f}",
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--md", type=Path, help="also write the report (markdown) here")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        lines = render(measure(args.repeats, Path(tmp)), repeats=args.repeats)
    print("\n".join(lines))
    if args.md is not None:
        command = f".venv/bin/python benchmarks/audit_speed.py --repeats {args.repeats} --md {args.md}"
        text = [
            "# Audit speed: the quickstart's run and its audit, side by side",
            "",
            "Generated by `benchmarks/audit_speed.py` (do not edit by hand). Re-run with:",
            "",
            "```bash",
            command,
            "```",
            "",
            "Both are whole commands timed from outside (start-up, imports and exit included); "
            "see the script's docstring for what each line measures.",
            "",
            "```text",
            *lines,
            "```",
            "",
        ]
        args.md.write_text("\n".join(text), encoding="utf-8")
        print(f"wrote {args.md}")


if __name__ == "__main__":
    main()
