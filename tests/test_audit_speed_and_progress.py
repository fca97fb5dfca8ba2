"""``fedledger audit``'s progress bar and what was done to make the audit fast: the bar goes
to stderr (and never into ``--json``'s stdout), ``--quiet`` hides it, and neither the bar nor
the speed-ups change a report."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import tiny_config
from typer.testing import CliRunner

from fedledger.audit import audit_run
from fedledger.cli.main import app
from fedledger.engine import run_experiment

runner = CliRunner()
BAR = re.compile(r"audit\s+(\S\s+)?(transactions|rounds)\s.*\s(\d+)/(\d+)")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("progress") / "run"
    run_experiment(tiny_config(), out=out, progress=False)
    return out


def _bars(text: str) -> dict[str, tuple[int, int]]:
    """The last state of each stage's line: (done, total)."""
    return {m[2]: (int(m[3]), int(m[4])) for m in BAR.finditer(text)}


def test_the_bar_goes_to_stderr_and_the_json_report_alone_to_stdout(run_dir: Path) -> None:
    """With --json, stdout is the report and nothing else; the bar's final picture (stderr is
    not a terminal here, so rich draws only that) shows every transaction and round done."""
    res = runner.invoke(app, ["audit", str(run_dir), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout) == json.loads(audit_run(run_dir).to_json())
    report = audit_run(run_dir)
    assert _bars(res.stderr) == {
        "transactions": (report.transactions, report.transactions),
        "rounds": (report.rounds, report.rounds),
    }
    assert not _bars(res.stdout)


def test_quiet_hides_the_bar_and_keeps_the_verdict(run_dir: Path) -> None:
    res = runner.invoke(app, ["audit", str(run_dir), "--quiet"])
    assert res.exit_code == 0, res.output
    assert not _bars(res.output)
    assert "OK: every signature, blob, aggregation and output is consistent" in res.stdout
    assert res.stderr == ""  # the verdict is the result (stdout); the bar would be on stderr


def test_a_failed_audit_prints_its_findings_after_the_bar(run_dir: Path, tmp_path: Path) -> None:
    """An edited summary.json: exit 1, the finding named on stdout, the bar complete on
    stderr."""
    bad = tmp_path / "bad"
    subprocess.run(["cp", "-a", str(run_dir), str(bad)], check=True)
    summary = json.loads((bad / "summary.json").read_text())
    summary["rounds"] = 99
    (bad / "summary.json").write_text(json.dumps(summary))
    res = runner.invoke(app, ["audit", str(bad)])
    assert res.exit_code == 1
    assert "summary.json says rounds = 99" in res.stdout
    assert "summary.json says" not in res.stderr and list(BAR.finditer(res.stderr))


def test_nothing_to_audit_leaves_no_spinning_start_up_line(tmp_path: Path) -> None:
    res = runner.invoke(app, ["audit", str(tmp_path)])
    assert res.exit_code == 1
    assert "no config.toml" in res.output
    assert "loading" not in res.output


def test_progress_is_told_of_every_transaction_and_round_and_changes_no_finding(
    run_dir: Path,
) -> None:
    calls: list[tuple[str, int, int]] = []
    told = audit_run(run_dir, progress=lambda *a: calls.append(a))
    plain = audit_run(run_dir)
    assert told.to_json() == plain.to_json()
    txs = [c for c in calls if c[0] == "transactions"]
    rounds = [c for c in calls if c[0] == "rounds"]
    assert calls == txs + rounds  # the replay, then the rounds
    assert txs == [("transactions", k, plain.transactions) for k in range(1, plain.transactions + 1)]
    assert rounds == [("rounds", k, plain.rounds) for k in range(1, plain.rounds + 1)]


def test_the_audit_sets_torchs_deterministic_mode_without_importing_inductor() -> None:
    """As torch.use_deterministic_algorithms(True) does (ATen's flag, and inductor's
    config.deterministic once inductor loads), without loading inductor for it."""
    code = (
        "import sys, torch\n"
        "from fedledger.audit.auditor import deterministic_torch\n"
        "deterministic_torch()\n"
        "assert 'torch._inductor' not in sys.modules, 'inductor imported'\n"
        "assert torch.are_deterministic_algorithms_enabled()\n"
        "import torch._inductor.config as c\n"
        "assert c.deterministic is True\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TORCHINDUCTOR_DETERMINISTIC"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
