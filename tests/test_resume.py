"""Never lose work: a run killed at any point (SIGKILL, no clean-up) audits as unfinished, and
``--resume`` goes on from its last recorded round to the global model an uninterrupted run
gives, with a directory that then audits clean. The run carries cross-round state of every
kind: FoolsGold's per-client history, FedAdam's moments, flag counts, an attacker."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import tomli_w

import fedledger
from fedledger.audit import audit_run
from fedledger.config import load_config
from fedledger.engine.checkpoint import RESUME_DIR
from fedledger.errors import ConfigError, DataError

RAW = {
    "seed": 3,
    "name": "resume",
    "data": {"name": "digits", "max_train_samples": 400, "max_test_samples": 200},
    "model": {"name": "mlp", "hidden": [16]},
    "federation": {"num_clients": 6, "rounds": 7, "local_epochs": 1, "batch_size": 16, "lr": 0.1},
    "aggregation": {"name": "foolsgold"},
    "server": {"optimizer": "fedadam"},
    "attack": {"name": "sign_flip", "clients": [5]},
}

# killed by its own hand at a chosen point: "row K" right after round K's metrics row is
# written (before its checkpoint), "train K" while round K trains (rounds ahead of the chain)
KILLER = """
import os, signal, sys
import fedledger
from fedledger.engine import Hooks
cfg = fedledger.load_config(sys.argv[1])
mode, k = sys.argv[3], int(sys.argv[4])
die = lambda: os.kill(os.getpid(), signal.SIGKILL)
if mode == "row":
    fedledger.run(cfg, out=sys.argv[2], on_round=lambda r: die() if r.round == k else None)
else:
    fedledger.run(cfg, out=sys.argv[2], hooks=Hooks(update=lambda r, c, d: die() if (r, c) == (k, 1) else d))
"""


def _config(tmp: Path, **changes: dict) -> Path:
    raw = json.loads(json.dumps(RAW))
    for section, values in changes.items():
        raw.setdefault(section, {}).update(values)
    path = tmp / "c.toml"
    path.write_text(tomli_w.dumps(raw))
    return path


def _killed(config: Path, out: Path, mode: str, k: int) -> None:
    done = subprocess.run(
        [sys.executable, "-c", KILLER, str(config), str(out), mode, str(k)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    tmp = tmp_path_factory.mktemp("ref")
    config = _config(tmp)
    return config, fedledger.run(config, out=tmp / "full").global_model_hash


# kill points drawn once from a fixed seed (the rounds), plus both edges of the run
_rng = random.Random(2026)
POINTS = [("row", _rng.randrange(1, 6)), ("train", _rng.randrange(1, 6)), ("train", 0), ("row", 6)]


@pytest.mark.parametrize(("mode", "k"), POINTS)
def test_a_killed_run_resumes_to_the_uninterrupted_model(reference, tmp_path, mode, k) -> None:
    config, full_hash = reference
    out = tmp_path / "run"
    _killed(config, out, mode, k)
    killed = audit_run(out)
    assert not killed.ok
    assert any("summary.json is missing" in p for p in killed.problems)
    result = fedledger.run(config, out=out, resume=True)
    assert result.global_model_hash == full_hash
    assert [r.round for r in result.rounds] == list(range(7))
    report = result.audit()
    assert report.ok, report.describe()


def test_a_line_cut_short_by_the_kill_is_dropped(reference, tmp_path) -> None:
    """A kill while a transaction's line was being written leaves half a line: the resumed
    run drops it (the transaction is sent again) and audits clean."""
    config, full_hash = reference
    out = tmp_path / "run"
    _killed(config, out, "row", 3)
    log = out / "ledger" / "transactions.jsonl"
    log.write_text(log.read_text() + '{"block": 99, "label": "finalizeAnd')
    metrics = out / "metrics.csv"
    metrics.write_text(metrics.read_text() + "4,0.1")
    result = fedledger.run(config, out=out, resume=True)
    assert result.global_model_hash == full_hash
    assert result.audit().ok


def test_a_run_without_the_ledger_resumes_too(tmp_path) -> None:
    config = _config(tmp_path, ledger={"enabled": False})
    full = fedledger.run(config, out=tmp_path / "full").global_model_hash
    _killed(config, tmp_path / "run", "row", 2)
    assert fedledger.run(config, out=tmp_path / "run", resume=True).global_model_hash == full


def test_what_cannot_be_resumed_says_why(reference, tmp_path) -> None:
    config, _ = reference
    done = tmp_path / "done"
    fedledger.run(config, out=done, progress=False)
    with pytest.raises(ConfigError, match="is finished"):
        fedledger.run(config, out=done, resume=True)
    with pytest.raises(ConfigError, match="holds no run"):
        fedledger.run(config, out=tmp_path / "empty", resume=True)
    out = tmp_path / "run"
    _killed(config, out, "row", 2)
    other = load_config(config, ["federation.lr=0.2"])
    with pytest.raises(ConfigError, match="differs from the one the run recorded"):
        fedledger.run(other, out=out, resume=True)
    on_node = load_config(config, ['ledger.url="http://127.0.0.1:9"'])
    with pytest.raises(ConfigError, match=r"does not support a run with ledger.url"):
        fedledger.run(on_node, out=out, resume=True)
    state = out / RESUME_DIR / "state.safetensors"
    blob = bytearray(state.read_bytes())
    blob[-1] ^= 0x01  # one bit of the checkpoint's tensors
    state.write_bytes(bytes(blob))
    with pytest.raises(DataError, match="cannot be resumed"):
        fedledger.run(config, out=out, resume=True)


def test_resume_and_overwrite_together_is_an_error(reference, tmp_path) -> None:
    from typer.testing import CliRunner

    from fedledger.cli.main import app

    config, _ = reference
    res = CliRunner().invoke(
        app, ["run", str(config), "--out", str(tmp_path / "r"), "--resume", "--overwrite"]
    )
    assert res.exit_code == 2 and "choose one" in res.output


def test_a_killed_run_whose_log_ends_mid_line_audits_as_unfinished(reference, tmp_path) -> None:
    """The line the kill cut short is left out with a warning; the run is still reported as
    not finished, and a finished run's log gets no such leniency."""
    config, _ = reference
    out = tmp_path / "run"
    _killed(config, out, "row", 2)
    log = out / "ledger" / "transactions.jsonl"
    log.write_text(log.read_text() + '{"block": 99, "label": "finalizeAnd')
    report = audit_run(out)
    assert not report.ok
    assert any("summary.json is missing" in p for p in report.problems)
    assert any("cut short" in w.message for w in report.warnings)
    assert not any("not a transaction record" in p for p in report.problems)
    done = tmp_path / "done"
    fedledger.run(config, out=done)
    log = done / "ledger" / "transactions.jsonl"
    log.write_text(log.read_text() + '{"block": 99, "label": "finalizeAnd')
    assert any("not a transaction record" in p for p in audit_run(done).problems)
