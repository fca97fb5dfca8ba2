"""The Python API (fedledger.run): typed results, in memory or kept, streamed rounds, silent."""

from __future__ import annotations

import csv
import logging
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import tiny_config

import fedledger
from fedledger.api import RoundResult, RunResult
from fedledger.client import evaluate
from fedledger.engine import Hooks
from fedledger.errors import AuditError, ConfigError
from fedledger.federation import build_federation
from fedledger.models import get_flat_params


@pytest.fixture(scope="module")
def kept(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunResult, list[RoundResult]]:
    streamed: list[RoundResult] = []
    out = tmp_path_factory.mktemp("api") / "run"
    return fedledger.run(tiny_config(), out=out, on_round=streamed.append), streamed


def test_a_kept_run_returns_what_its_directory_records(kept) -> None:
    """The result is the run directory read back: the summary, every metrics row, and the
    model whose bytes the ledger recorded; the audit of that directory passes."""
    result, _ = kept
    assert result.run_dir is not None and (result.run_dir / "summary.json").exists()
    with (result.run_dir / "metrics.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r.round for r in result.rounds] == [int(r["round"]) for r in rows] == [0, 1, 2]
    assert result.rounds[-1].accuracy == pytest.approx(float(rows[-1]["accuracy"]))
    assert result.final_accuracy == result.summary["final_accuracy"]
    report = result.audit()
    assert report.ok, report.describe()


def test_the_returned_model_is_the_final_global_model(kept) -> None:
    """Evaluated on the run's test split, the returned model gives the recorded accuracy."""
    result, _ = kept
    fed = build_federation(result.config)
    acc, _ = evaluate(fed.model, get_flat_params(result.model), fed.data.x_test, fed.data.y_test)
    assert acc == pytest.approx(result.final_accuracy, abs=1e-12)
    assert not result.model.training


def test_rounds_stream_to_the_callback_in_order_as_recorded(kept) -> None:
    result, streamed = kept
    assert [r.round for r in streamed] == [0, 1, 2]
    for got, rec in zip(streamed, result.rounds, strict=True):
        assert got.accuracy == pytest.approx(rec.accuracy)
        assert got.num_used == rec.num_used == 4


def test_an_in_memory_run_leaves_nothing_and_gives_the_same_model(kept, tmp_path) -> None:
    """Without ``out`` the records go to a temporary directory that is gone afterwards; the
    model is bit-identical to the kept run's (same config, same seed)."""
    before = set(Path(tmp_path).iterdir())
    result = fedledger.run(tiny_config())
    assert result.run_dir is None
    assert result.global_model_hash == kept[0].global_model_hash
    assert torch.equal(get_flat_params(result.model), get_flat_params(kept[0].model))
    assert set(Path(tmp_path).iterdir()) == before
    with pytest.raises(AuditError, match="pass out="):
        result.audit()


SILENT = """
import sys
sys.path.insert(0, {tests!r})
from helpers import tiny_config
import fedledger
from fedledger.engine import Hooks
junk = Hooks(update=lambda rnd, c, delta: b"not safetensors" if c == 0 else delta)
result = fedledger.run(tiny_config(ledger={{"enabled": False}}), hooks=junk)
assert [r.num_rejected for r in result.rounds] == [1, 1, 1], result.rounds
"""


def test_the_library_prints_nothing_unless_asked() -> None:
    """In a fresh interpreter with logging left unconfigured: no histogram, no progress bar,
    no log line on either stream — even though an update is rejected every round (a client
    sends bytes that are no tensor, which the library logs as a warning)."""
    code = SILENT.format(tests=str(Path(__file__).parent))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and done.stderr == ""


def test_the_rejections_reach_a_handler_the_application_installs(caplog) -> None:
    junk = Hooks(update=lambda rnd, c, delta: b"not safetensors" if c == 0 else delta)
    with caplog.at_level(logging.INFO, logger="fedledger"):
        fedledger.run(tiny_config(ledger={"enabled": False}, federation={"rounds": 1}), hooks=junk)
    assert any("client 0" in r.getMessage() for r in caplog.records)


def test_a_mapping_or_a_file_is_validated_like_the_cli(tmp_path) -> None:
    with pytest.raises(ConfigError, match="federation.rounds"):
        fedledger.run({"federation": {"rounds": 0}})
    (tmp_path / "c.toml").write_text('name = "x"\n[federation]\nroundz = 3\n')
    with pytest.raises(ConfigError, match="roundz"):
        fedledger.run(tmp_path / "c.toml")


def test_the_documented_example_runs(tmp_path) -> None:
    """examples/api_example.py, as docs/api.md shows it, runs and its audit passes."""
    script = Path(__file__).resolve().parents[1] / "examples" / "api_example.py"
    done = subprocess.run(
        [sys.executable, str(script), "--rounds", "2", "--out", str(tmp_path / "run")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "round 1: accuracy" in done.stdout and "audit: OK" in done.stdout
