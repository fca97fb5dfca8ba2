"""Plugins: a model, a data set, a partition, a rule, an attack and a training loop defined in
one user file outside the package run from the CLI and from Python, and the audit of those runs
loads the same code (examples/plugins/my_plugins.py)."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

import fedledger
from fedledger.cli.main import app
from fedledger.config import (
    BUILTIN_DATASETS,
    BUILTIN_MODELS,
    BUILTIN_PARTITIONS,
    config_from_dict,
    load_config,
)
from fedledger.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "plugins"
runner = CliRunner()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("fedledger")
    return subprocess.run([str(exe), *args], capture_output=True, text=True)


@pytest.fixture(scope="module", autouse=True)
def _registries_restored() -> Iterator[None]:
    """The plugins these tests import register into the process's registries: afterwards the
    other test modules see the built-ins only again."""
    from fedledger.aggregation.registry import RULES
    from fedledger.attacks.registry import ATTACKS
    from fedledger.client.trainers import TRAINERS
    from fedledger.data.datasets import DATASETS
    from fedledger.data.partition import SCHEMES
    from fedledger.models.registry import MODELS, model_names

    model_names()  # the built-ins loaded before the snapshot
    tables = [RULES, ATTACKS, TRAINERS, DATASETS, SCHEMES, MODELS]
    saved = [set(t._items) for t in tables]
    modules = set(sys.modules)
    yield
    for t, names in zip(tables, saved, strict=True):  # built-ins may have loaded meanwhile
        for name in set(t._items) - names - set(getattr(t, "_builtins", {})):
            del t._items[name]
    for name in set(sys.modules) - modules:
        if name.startswith("fedledger_plugin_") or name in ("my_plugins", "clash", "broken"):
            del sys.modules[name]


@pytest.fixture(scope="module")
def plugin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the example outside the repository: the user's own folder."""
    d = tmp_path_factory.mktemp("user") / "project"
    shutil.copytree(EXAMPLE, d)
    return d


def test_a_run_of_user_code_from_the_cli_audits(plugin_dir: Path, tmp_path: Path, monkeypatch) -> None:
    """From another working directory: the plugin is found next to the config file, every
    custom part is used, and `fedledger audit` of the run passes."""
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["run", str(plugin_dir / "custom.toml"), "--out", "r", "--quiet"])
    assert res.exit_code == 0, res.output
    run = tmp_path / "r"
    recorded = load_config(run / "config.toml")
    assert recorded.plugins == [str((plugin_dir / "my_plugins.py").resolve())]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["attack"]["name"] == "noisy_update" and summary["attack"]["malicious"] == [5]
    with (run / "clients.csv").open() as fh:  # sorted_blocks: the first client holds class 0 only
        first = next(csv.DictReader(fh))
    assert int(first["class_0"]) == int(first["num_samples"]) > 0
    res = runner.invoke(app, ["audit", str(run)])
    assert res.exit_code == 0, res.output
    assert "OK" in res.output


def test_a_run_of_user_code_from_python_audits(plugin_dir: Path, tmp_path: Path) -> None:
    raw = load_config(plugin_dir / "custom.toml").model_dump(mode="json", exclude_none=True)
    result = fedledger.run(raw, out=tmp_path / "r")
    assert type(result.model).__name__ == "TanhNet"
    assert result.model.net[1].out_features == 16  # [model] width = 16
    report = result.audit()
    assert report.ok, report.describe()


def test_the_audit_runs_the_recorded_plugin_and_notices_when_it_changed(
    plugin_dir: Path, tmp_path: Path
) -> None:
    """The audit recomputes every aggregate with the plugin's rule: a rule edited after the run
    (clipping to half the median norm instead) no longer gives the recorded global models."""
    user = tmp_path / "user"
    shutil.copytree(plugin_dir, user)
    run = tmp_path / "r"
    done = _cli("run", str(user / "custom.toml"), "--out", str(run), "--quiet")
    assert done.returncode == 0, done.stderr
    assert _cli("audit", str(run)).returncode == 0
    src = (user / "my_plugins.py").read_text()
    changed = src.replace("bound = factor * norms.median()", "bound = 0.5 * factor * norms.median()")
    assert changed != src
    (user / "my_plugins.py").write_text(changed)
    audit = _cli("audit", str(run))
    assert audit.returncode != 0
    assert "recomputing median_norm_mean" in audit.stdout + audit.stderr
    assert "Traceback" not in audit.stderr


def test_an_unknown_name_says_how_to_add_one() -> None:
    with pytest.raises(ConfigError, match=r"unknown model 'resnet_tiny'.*plugins"):
        config_from_dict({"model": {"name": "resnet_tiny"}})
    with pytest.raises(ConfigError, match=r"unknown dataset 'cifar'"):
        config_from_dict({"data": {"name": "cifar"}})
    with pytest.raises(ConfigError, match=r"unknown training loop 'mine'"):
        config_from_dict({"federation": {"trainer": "mine"}})


def test_a_bad_plugin_is_a_config_error_naming_it(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('plugins = ["nowhere_to_be_found"]\n')
    with pytest.raises(ConfigError, match="no module 'nowhere_to_be_found'"):
        load_config(cfg)
    (tmp_path / "broken.py").write_text("raise RuntimeError('boom')\n")
    cfg.write_text('plugins = ["broken"]\n')
    with pytest.raises(ConfigError, match=r"importing .*broken\.py.*RuntimeError: boom"):
        load_config(cfg)
    (tmp_path / "clash.py").write_text(
        "from fedledger.aggregation import register_rule\n"
        "@register_rule('fedavg')\n"
        "def mine(updates, weights, *, ctx): ...\n"
    )
    cfg.write_text('plugins = ["clash"]\n')
    with pytest.raises(ConfigError, match="'fedavg' is already registered"):
        load_config(cfg)


def test_model_parameters_come_from_the_model_table(tmp_path: Path) -> None:
    """The CNN's channels, kernel_size and hidden are set from TOML; a parameter the model
    does not take is an error naming what it accepts (not silently dropped)."""
    from fedledger.federation import build_federation

    base = {"data": {"name": "digits", "max_train_samples": 100, "max_test_samples": 50}}
    cnn = config_from_dict(
        {**base, "model": {"name": "cnn", "channels": [4], "kernel_size": 3, "hidden": 8}}
    )
    model = build_federation(cnn).model
    convs = [m for m in model.modules() if m.__class__.__name__ == "Conv2d"]
    assert [c.out_channels for c in convs] == [4] and convs[0].kernel_size == (3, 3)
    bad = config_from_dict({**base, "model": {"name": "logreg", "hidden": [8]}})
    with pytest.raises(ConfigError, match=r"model 'logreg' got unknown parameter\(s\) \['hidden'\]"):
        build_federation(bad)


def test_the_built_in_name_lists_match_the_registries() -> None:
    """config.py checks names without importing torch, from its own lists of built-ins: they
    must name exactly what the packages register (in a fresh interpreter: no plugin loaded)."""
    code = (
        "import fedledger.models as m, fedledger.data as d\n"
        "print(m.model_names()); print(d.dataset_names()); print(d.partition_names())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    lines = out.stdout.splitlines()
    assert [eval(x) for x in lines] == [  # noqa: S307 — our own subprocess's list literals
        sorted(BUILTIN_MODELS),
        sorted(BUILTIN_DATASETS),
        sorted(BUILTIN_PARTITIONS),
    ]


def test_an_installed_package_registers_through_its_entry_point(tmp_path: Path) -> None:
    """A package with a ``fedledger.plugins`` entry point is imported when a config is
    validated: its rule validates without any ``plugins`` key."""
    site = tmp_path / "site"
    (site / "extra_rules").mkdir(parents=True)
    (site / "extra_rules" / "__init__.py").write_text(
        textwrap.dedent(
            """
            from fedledger.aggregation import register_rule
            from fedledger.aggregation.fedavg import fedavg

            register_rule("fedavg_again")(fedavg)
            """
        )
    )
    dist = site / "extra_rules-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: extra-rules\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[fedledger.plugins]\nextra = extra_rules\n")
    code = (
        "from fedledger.config import config_from_dict\n"
        "print(config_from_dict({'aggregation': {'name': 'fedavg_again'}}).aggregation.name)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "fedavg_again"
