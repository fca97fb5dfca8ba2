"""The command line: exit codes and messages people see."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from fedledger.cli.main import app

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def test_bad_config_key_exits_2_with_the_key_named(tmp_path: Path) -> None:
    p = tmp_path / "c.toml"
    p.write_text("[federation]\nrouns = 2\n")
    res = runner.invoke(app, ["run", str(p), "--out", str(tmp_path / "r")])
    assert res.exit_code == 2
    assert "unknown key 'federation.rouns'" in res.output
    assert not (tmp_path / "r").exists()


def test_missing_data_file_is_a_clear_error(tmp_path: Path) -> None:
    res = runner.invoke(
        app,
        [
            "run",
            str(ROOT / "examples/quickstart.toml"),
            "--set",
            'data.name="csv"',
            "--set",
            f'data.path="{tmp_path / "nope.csv"}"',
            "--out",
            str(tmp_path / "r"),
        ],
    )
    assert res.exit_code == 2
    assert "nope.csv" in res.output


def test_run_then_audit(tmp_path: Path) -> None:
    out = tmp_path / "r"
    res = runner.invoke(
        app,
        [
            "run",
            str(ROOT / "examples/quickstart.toml"),
            "--quiet",
            "--out",
            str(out),
            "--set",
            "federation.rounds=2",
            "--set",
            "federation.num_clients=3",
            "--set",
            "federation.clients_per_round=3",
            "--set",
            "data.max_train_samples=300",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "final accuracy" in res.output
    res = runner.invoke(app, ["audit", str(out)])
    assert res.exit_code == 0, res.output
    assert "OK" in res.output


def test_audit_of_a_non_run_directory_exits_1(tmp_path: Path) -> None:
    res = runner.invoke(app, ["audit", str(tmp_path)])
    assert res.exit_code == 1
    assert "no config.toml" in res.output


def _small_run(out: Path, *extra: str) -> object:
    args = ["run", str(ROOT / "examples/quickstart.toml"), "--quiet", "--out", str(out)]
    args += ["--set", "federation.rounds=2", "--set", "federation.num_clients=3"]
    args += ["--set", "federation.clients_per_round=3", "--set", "data.max_train_samples=300"]
    return runner.invoke(app, [*args, *extra])


def test_a_second_run_into_a_run_directory_is_refused_and_loses_nothing(tmp_path: Path) -> None:
    """Running again into a run directory would mix two runs' transaction logs: it is refused
    with the way out named, the first run stays byte for byte and still audits; --overwrite
    replaces it."""
    out = tmp_path / "r"
    assert _small_run(out).exit_code == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    res = _small_run(out)
    assert res.exit_code == 2
    assert "already holds an earlier run" in res.output and "--overwrite" in res.output
    assert "Traceback" not in res.output
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert runner.invoke(app, ["audit", str(out)]).exit_code == 0
    res = _small_run(out, "--overwrite")
    assert res.exit_code == 0, res.output
    assert runner.invoke(app, ["audit", str(out)]).exit_code == 0


def test_overwrite_never_removes_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    """--out pointed at a folder of someone's files by mistake: refused, nothing deleted."""
    out = tmp_path / "thesis"
    out.mkdir()
    (out / "chapter1.tex").write_text("precious")
    for extra in ((), ("--overwrite",)):
        res = _small_run(out, *extra)
        assert res.exit_code == 2 and "choose another --out" in res.output
        assert (out / "chapter1.tex").read_text() == "precious"
        assert sorted(p.name for p in out.iterdir()) == ["chapter1.tex"]


def test_a_sweep_with_a_failed_cell_exits_1_after_writing_every_row(tmp_path: Path) -> None:
    from test_sweep import BASE

    cfg = tmp_path / "base.toml"
    cfg.write_text(BASE)
    args = ["sweep", str(cfg), "--grid", "aggregation.name=fedavg,bulyan", "--out", str(tmp_path)]
    res = runner.invoke(app, args)
    assert res.exit_code == 1, res.output
    assert "2 cells, 1 failed" in res.output
    assert (tmp_path / "results.csv").read_text().count("\n") == 3
    ok = runner.invoke(
        app, ["sweep", str(cfg), "--grid", "aggregation.name=fedavg", "--out", str(tmp_path / "ok")]
    )
    assert ok.exit_code == 0, ok.output


def test_version_is_printed_on_stdout() -> None:
    from fedledger import __version__

    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and res.stdout.strip() == f"fedledger {__version__}"


def test_ctrl_c_during_a_run_is_one_line_and_exit_130(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fedledger.engine.experiment

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(fedledger.engine.experiment, "run_experiment", interrupted)
    res = runner.invoke(
        app, ["run", str(ROOT / "examples/quickstart.toml"), "--out", str(tmp_path)]
    )
    assert res.exit_code == 130
    assert "interrupted:" in res.output and "Traceback" not in res.output


def test_run_json_prints_the_summary_file_on_stdout(tmp_path: Path) -> None:
    import json

    args = ["run", str(ROOT / "examples/quickstart.toml"), "--quiet", "--json"]
    args += ["--set", "federation.rounds=2", "--set", "ledger.enabled=false"]
    res = runner.invoke(app, [*args, "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary == json.loads((tmp_path / "r/summary.json").read_text())
    assert summary["rounds"] == 2


def test_results_go_to_stdout_progress_and_errors_to_stderr(tmp_path: Path) -> None:
    """A script can pipe what a command found: the run's result lines and the audit's verdict
    on stdout; the histogram, progress and errors on stderr."""
    args = ["run", str(ROOT / "examples/quickstart.toml"), "--set", "federation.rounds=2"]
    res = runner.invoke(app, [*args, "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    assert "final accuracy" in res.stdout and "results in" in res.stdout
    assert "final accuracy" not in res.stderr and "label histogram" in res.stderr
    res = runner.invoke(app, ["audit", str(tmp_path / "r"), "--quiet"])
    assert res.exit_code == 0 and "OK:" in res.stdout and "OK:" not in res.stderr
    res = runner.invoke(app, [*args, "--out", str(tmp_path / "r")])
    assert res.exit_code == 2 and "error:" in res.stderr and res.stdout == ""
