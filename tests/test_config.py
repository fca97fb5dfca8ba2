from pathlib import Path

import pytest

from fedledger.config import load_config, parse_override
from fedledger.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_quickstart_loads_and_overrides_apply() -> None:
    cfg = load_config(
        ROOT / "examples/quickstart.toml", ["federation.rounds=3", "ledger.enabled=false"]
    )
    assert cfg.federation.rounds == 3
    assert cfg.ledger.enabled is False
    assert cfg.data.name == "digits" and cfg.federation.num_clients == 10


def test_unknown_key_is_named(tmp_path: Path) -> None:
    p = tmp_path / "c.toml"
    p.write_text("[federation]\nrouns = 3\n")
    with pytest.raises(ConfigError, match=r"unknown key 'federation.rouns'"):
        load_config(p)


def test_unknown_section_is_named(tmp_path: Path) -> None:
    p = tmp_path / "c.toml"
    p.write_text("[fedration]\nrounds = 3\n")
    with pytest.raises(ConfigError, match="unknown key 'fedration'"):
        load_config(p)


def test_wrong_type_names_key_and_value(tmp_path: Path) -> None:
    p = tmp_path / "c.toml"
    p.write_text('[federation]\nrounds = "many"\n')
    with pytest.raises(ConfigError, match=r"federation.rounds: .*integer.*'many'"):
        load_config(p)


def test_override_with_wrong_type_fails() -> None:
    with pytest.raises(ConfigError, match="federation.lr"):
        load_config(ROOT / "examples/quickstart.toml", ["federation.lr=-1"])


def test_override_parsing() -> None:
    assert parse_override("a.b=3") == (["a", "b"], 3)
    assert parse_override("a.b=fast") == (["a", "b"], "fast")
    assert parse_override('ledger.url="http://x"') == (["ledger", "url"], "http://x")
    with pytest.raises(ConfigError, match="section.key=value"):
        parse_override("nonsense")


def test_selection_conflicts_and_bounds(tmp_path: Path) -> None:
    p = tmp_path / "c.toml"
    p.write_text("[federation]\nnum_clients = 5\nclients_per_round = 6\n")
    with pytest.raises(ConfigError, match="exceeds num_clients"):
        load_config(p)


def test_missing_file_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")
    p = tmp_path / "bad.toml"
    p.write_text("[federation\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(p)


def test_unknown_rule_parameter_is_a_config_error() -> None:
    from fedledger.aggregation import create_rule

    with pytest.raises(ConfigError, match="unknown parameter"):
        create_rule("fedavg", {"beta": 0.1}, num_clients=5)
