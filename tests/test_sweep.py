"""fedledger sweep: grid parsing, presets, resumability, outputs."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from fedledger.engine.sweep import cell_config_dict, parse_grid, run_sweep
from fedledger.errors import ConfigError

BASE = """
seed = 3
[data]
name = "digits"
max_train_samples = 300
max_test_samples = 100
[model]
name = "logreg"
[federation]
num_clients = 6
rounds = 2
local_epochs = 1
[ledger]
enabled = false
[attack]
name = "none"
fraction = 0.34
[sweep.attack_params.sign_flip]
scale = 4.0
[sweep.rule_params.krum]
num_malicious = 1
[sweep.rule_params.bulyan]
num_malicious = 1
"""


def test_grid_parsing_and_errors() -> None:
    g = parse_grid(["attack.name=a,b", "attack.fraction=0.1,0.3"])
    assert len(g) == 4 and g.values[1] == [0.1, 0.3]
    with pytest.raises(ConfigError, match="at least one"):
        parse_grid([])
    with pytest.raises(ConfigError, match="given twice"):
        parse_grid(["a.b=1", "a.b=2"])


def test_presets_apply_per_cell(tmp_path: Path) -> None:
    import tomllib

    base = tomllib.loads(BASE)
    raw = cell_config_dict(base, {"attack.name": "sign_flip", "aggregation.name": "krum"}, [])
    assert raw["attack"]["params"] == {"scale": 4.0}
    assert raw["aggregation"]["num_malicious"] == 1
    assert "sweep" not in raw
    clean = cell_config_dict(base, {"attack.name": "none", "aggregation.name": "fedavg"}, [])
    assert "attack" not in clean


def test_sweep_writes_results_and_resumes(tmp_path: Path) -> None:
    cfg = tmp_path / "base.toml"
    cfg.write_text(BASE)
    grid = parse_grid(["attack.name=none,sign_flip", "aggregation.name=fedavg,krum"])
    rows = run_sweep(cfg, grid=grid, out=tmp_path / "sw", progress=False)
    assert len(rows) == 4 and all(r["status"] == "ok" for r in rows)
    table = list(csv.DictReader((tmp_path / "sw/results.csv").open()))
    assert [(r["attack.name"], r["aggregation.name"]) for r in table] == [
        ("none", "fedavg"),
        ("none", "krum"),
        ("sign_flip", "fedavg"),
        ("sign_flip", "krum"),
    ]
    for m in ("final_accuracy", "attack_success_rate", "detection_f1"):
        assert (tmp_path / f"sw/heatmap_{m}.png").exists()
    again = run_sweep(cfg, grid=grid, out=tmp_path / "sw", progress=False)
    assert all(r["status"] == "ok (cached)" for r in again)
    assert [r["global_model_hash"] for r in again] == [r["global_model_hash"] for r in rows]
    # a changed preset re-runs the cells it touches, and only those
    cfg.write_text(BASE.replace("scale = 4.0", "scale = 2.0"))
    changed = run_sweep(cfg, grid=grid, out=tmp_path / "sw", progress=False)
    assert [r["status"] for r in changed] == ["ok (cached)", "ok (cached)", "ok", "ok"]


def test_a_failing_cell_is_recorded_and_the_sweep_goes_on(tmp_path: Path) -> None:
    cfg = tmp_path / "base.toml"
    cfg.write_text(BASE)
    grid = parse_grid(["aggregation.name=fedavg,bulyan"])  # bulyan needs n >= 4f + 3
    rows = run_sweep(cfg, grid=grid, out=tmp_path / "sw", progress=False)
    assert rows[0]["status"] == "ok"
    assert rows[1]["status"].startswith("error:") and "bulyan" in rows[1]["status"].lower()


def test_cells_with_the_same_configuration_share_one_run(tmp_path: Path) -> None:
    """Without an attack the fraction means nothing: (none, 0.1) and (none, 0.3) are one run."""
    cfg = tmp_path / "base.toml"
    cfg.write_text(BASE)
    grid = parse_grid(["attack.name=none,sign_flip", "attack.fraction=0.1,0.34"])
    rows = run_sweep(cfg, grid=grid, out=tmp_path / "sw", progress=False)
    assert [r["status"] for r in rows] == [
        "ok",
        "ok (the run of attack.name=none__attack.fraction=0.1)",
        "ok",
        "ok",
    ]
    assert rows[0]["global_model_hash"] == rows[1]["global_model_hash"]
    assert rows[1]["attack.fraction"] == 0.34  # the row keeps its own grid values
    assert sorted(p.name for p in (tmp_path / "sw/cells").iterdir()) == [
        "attack.name=none__attack.fraction=0.1",
        "attack.name=sign_flip__attack.fraction=0.1",
        "attack.name=sign_flip__attack.fraction=0.34",
    ]


def test_each_heat_map_spans_its_own_values() -> None:
    from fedledger.engine.sweep import color_range

    nan = float("nan")
    assert color_range([0.91, 0.97, nan]) == (0.91, 0.97)  # not 0-1: differences stay visible
    assert color_range([0.5]) == pytest.approx((0.45, 0.55))
    assert color_range([1.0, 1.0]) == (0.95, 1.0)
    assert color_range([nan, nan]) == (0.0, 1.0)  # nothing applies: every cell says n/a
