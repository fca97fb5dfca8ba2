"""Registries that know their built-ins before importing them (so that a configuration is
checked without torch) and still load, refuse and name them like plain registries."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fedledger.errors import RegistryError
from fedledger.registry import Registry


def test_builtins_are_known_without_import_and_loaded_on_first_get(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``in`` and ``names()`` import nothing; ``get`` imports the built-in's module, whose
    import registers it; an unknown name lists every choice."""
    reg: Registry[int] = Registry("thing", builtins={"seven": "fedledger_test_seven"})
    (tmp_path / "fedledger_test_seven.py").write_text(
        "from test_registry import REG\nREG.register('seven')(7)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys.modules[__name__], "REG", reg, raising=False)
    assert "seven" in reg and reg.names() == ["seven"]
    assert "fedledger_test_seven" not in sys.modules
    assert reg.get("seven") == 7 and "fedledger_test_seven" in sys.modules
    with pytest.raises(RegistryError, match="unknown thing 'nope'; expected one of: seven"):
        reg.get("nope")
    monkeypatch.delitem(sys.modules, "fedledger_test_seven")


def test_a_plugin_cannot_take_a_builtin_name_loaded_or_not() -> None:
    reg: Registry[object] = Registry("thing", builtins={"late": "fedledger_no_such_module"})
    with pytest.raises(RegistryError, match="'late' is already registered"):
        reg.register("late")(object())
    reg.register("own")(1)
    with pytest.raises(RegistryError, match="'own' is already registered"):
        reg.register("own")(2)
    assert reg.names() == ["late", "own"] and reg.get("own") == 1


def test_every_builtin_attack_and_rule_is_registered_by_the_module_named() -> None:
    """The light tables and the modules agree: each name loads from its module, and loading
    every module registers nothing the table does not name."""
    from fedledger.aggregation.registry import RULES
    from fedledger.attacks.registry import ATTACKS

    for reg in (ATTACKS, RULES):
        for name in reg.names():
            reg.get(name)
        assert sorted(reg._items) == reg.names()  # noqa: SLF001  (every built-in now loaded)


def test_the_configuration_is_validated_without_torch_or_web3() -> None:
    """In a fresh interpreter: importing fedledger.config and validating configurations (a
    rule, a network, a task market, an unknown attack) loads neither torch nor web3 (nor
    scikit-learn); a valid [attack] section does load torch, once every other check passed, to
    check the attack's parameters with the attack's own class."""
    code = textwrap.dedent(
        """
        import sys
        import tomllib
        from pathlib import Path
        from fedledger.config import config_from_dict, load_config
        from fedledger.errors import ConfigError
        root = Path(sys.argv[1])
        heavy = lambda: sorted(m for m in ("torch", "web3", "sklearn") if m in sys.modules)
        load_config(root / "examples/quickstart.toml", ['aggregation.name="multikrum"'])
        load_config(root / "examples/quickstart_network.toml")
        market = tomllib.loads((root / "examples/crowdsourcing.toml").read_text())
        attack = market.pop("attack")
        config_from_dict(market)
        try:
            config_from_dict({**market, "attack": {**attack, "name": "nope"}})
        except ConfigError as exc:
            assert "attack.name: unknown attack 'nope'" in str(exc), exc
        else:
            raise AssertionError("an unknown attack validated")
        print("validated:", heavy())
        config_from_dict({**market, "attack": attack})
        print("with an attack:", heavy())
        """
    )
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-c", code, str(root)], capture_output=True, text=True, check=True
    )
    assert out.stdout.splitlines() == ["validated: []", "with an attack: ['torch']"], (
        out.stdout + out.stderr
    )
