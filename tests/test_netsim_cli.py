"""``fedledger netsim``: sweep parsing, the CSV and its plots, readable errors."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from fedledger.cli.netsim import netsim_command, register
from fedledger.errors import ConfigError
from fedledger.netsim.sweep import apply_override, parse_sweep, run_sweep

REQUIRED = [
    "block_rate", "block_size", "propagation_delay_s", "mean_block_interval_s", "fork_rate",
    "fork_rate_analytic", "round_latency_s", "round_latency_analytic_s", "tps",
]  # fmt: skip
SMALL = """
seed = 3
[data]
name = "digits"            # other sections are ignored by netsim
[network]
num_devices = 20
block_size = 20
blocks = 2000
rounds = 300
"""


def test_parse_sweep_forms() -> None:
    key, vals = parse_sweep("network.block_rate=0.05:2.0:20")
    assert key == "block_rate" and len(vals) == 20 and vals[0] == 0.05 and vals[-1] == 2.0
    assert parse_sweep("network.block_size=10:50:5") == ("block_size", [10, 20, 30, 40, 50])
    assert parse_sweep("network.consensus=pow,pbft") == ("consensus", ["pow", "pbft"])
    assert parse_sweep("network.uplink.fading=rayleigh") == ("uplink.fading", ["rayleigh"])
    key, vals = parse_sweep("network.block_rate=0.1:10:3:log")
    assert vals == pytest.approx([0.1, 1.0, 10.0])
    for bad in ("block_rate", "network.block_rate=1:2", "network.block_rate=a:b:3", "x=1:2:3:lin"):
        with pytest.raises(ConfigError, match="--sweep"):
            parse_sweep(bad)


def test_apply_override_is_a_deep_copy() -> None:
    base = {"uplink": {"bandwidth_hz": 1e6}}
    out = apply_override(base, "uplink.fading", "rayleigh")
    assert out == {"uplink": {"bandwidth_hz": 1e6, "fading": "rayleigh"}}
    assert base == {"uplink": {"bandwidth_hz": 1e6}}


def test_netsim_command_writes_csv_and_plots(tmp_path: Path) -> None:
    cfg = tmp_path / "net.toml"
    cfg.write_text(SMALL)
    out = tmp_path / "out"
    netsim_command(cfg, ["network.block_rate=0.2:1.0:3", "network.block_size=10,20"], out)
    with (out / "netsim.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 6
    assert all(c in rows[0] for c in REQUIRED)
    assert {r["block_size"] for r in rows} == {"10", "20"}
    for r in rows:
        assert float(r["mean_block_interval_s"]) > 0 and float(r["tps"]) > 0
        assert 0 <= float(r["fork_rate"]) <= 1 and float(r["round_latency_analytic_s"]) > 0
        assert r["seed"] == "3"
    for name in ("netsim_latency.png", "netsim_tps.png", "netsim_breakdown.png"):
        assert (out / name).stat().st_size > 1000


def test_sweeps_are_reproducible() -> None:
    section = {"num_devices": 10, "blocks": 500, "rounds": 50}
    a = run_sweep(section, 1, [parse_sweep("network.block_rate=0.5,1.0")])
    b = run_sweep(section, 1, [parse_sweep("network.block_rate=0.5,1.0")])
    assert [{k: str(v) for k, v in r.items()} for r in a] == [
        {k: str(v) for k, v in r.items()} for r in b
    ]
    c = run_sweep(section, 1, [parse_sweep("seed=1,2")])
    assert c[0]["tps"] != c[1]["tps"] and c[0]["seed"] == 1


def test_typer_command_and_errors(tmp_path: Path) -> None:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """fedledger"""

    register(app)
    cfg = tmp_path / "net.toml"
    cfg.write_text(SMALL)
    runner = CliRunner()
    res = runner.invoke(
        app, ["netsim", str(cfg), "--sweep", "network.block_rate=0.5", "--out", str(tmp_path / "o")]
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "o" / "netsim.csv").exists()
    bad = tmp_path / "bad.toml"
    bad.write_text("[network]\nblock_rate = -1.0\n")
    res = runner.invoke(app, ["netsim", str(bad), "--out", str(tmp_path / "b")])
    assert res.exit_code == 2
    assert "network.block_rate" in res.output and "greater than 0" in res.output
    res = runner.invoke(
        app,
        [
            "netsim",
            str(cfg),
            "--sweep",
            "network.uplink.bandwidth_hz=0",
            "--out",
            str(tmp_path / "c"),
        ],
    )
    assert res.exit_code == 2 and "network.uplink.bandwidth_hz" in res.output
