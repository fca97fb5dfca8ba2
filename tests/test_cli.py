"""The command line: exit codes and messages people see."""

from pathlib import Path

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
