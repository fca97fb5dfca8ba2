from pathlib import Path

import pytest

from fedledger.config import config_from_dict, load_config, parse_override
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


MARKET = ["task.budget=100", 'incentives.scoring="gtg_shapley"']


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("task.budget=1e-17", "task.budget 1e-17 is too small for 30 rounds"),
        ("task.stake=0", "task.stake: Input should be greater than 0"),
        (
            "incentives.cost_low=-0.5",
            "incentives.cost_low: Input should be greater than or equal to 0",
        ),
        ('incentives.scoring="shapley"', "incentives.scoring: Input should be 'gtg_shapley'"),
        ("incentives.cost_high=-1", "incentives.cost_high"),
        ("task.cost_rate_cap=0", "a cost_budget needs a cost_rate_cap above 0"),
        ("task.validator_share=0.95", r"add up to more than the whole budget"),
        ("ledger.enabled=false", "a task market runs on the ledger"),
    ],
)
def test_bad_market_terms_are_config_errors_that_say_what_is_expected(
    override: str, message: str
) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(ROOT / "examples/quickstart.toml", [*MARKET, override])
    assert message in str(err.value)
    assert "Value error" not in str(err.value)  # pydantic's prefix is not shown


def test_a_market_needs_both_its_sections() -> None:
    for half in MARKET:
        with pytest.raises(ConfigError, match=r"needs both a \[task\] section"):
            load_config(ROOT / "examples/quickstart.toml", [half])
    cfg = load_config(ROOT / "examples/quickstart.toml", MARKET)
    assert cfg.task is not None and cfg.incentives is not None
    assert cfg.task.budget == 100 and cfg.incentives.scoring == "gtg_shapley"


def test_a_bad_set_item_is_named_as_the_source_of_the_error() -> None:
    quickstart = Path(__file__).resolve().parents[1] / "examples/quickstart.toml"
    with pytest.raises(ConfigError) as err:
        load_config(quickstart, ["federation.rounds=2", 'federation.lr="fast"', "nosuch.key=1"])
    text = str(err.value)
    assert "federation.lr: Input should be a valid number" in text
    assert "(got 'fast') [from --set federation.lr=\"fast\"]" in text
    assert "unknown key 'nosuch'; check the spelling" in text
    assert "docs/configuration.md [from --set nosuch.key=1]" in text
    assert "rounds" not in text  # the good item is not blamed
    with pytest.raises(ConfigError) as err:  # a mistake in the file itself names no --set
        config_from_dict({"federation": {"lr": "fast"}}, overrides=["federation.rounds=2"])
    assert "from --set" not in str(err.value)


def test_relative_paths_in_a_file_are_relative_to_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fedledger.federation import load_data

    folder = tmp_path / "study"
    folder.mkdir()
    rows = ["a,b,label", *(f"{i},{i % 3},{i % 2}" for i in range(40))]
    (folder / "points.csv").write_text("\n".join(rows) + "\n")
    (folder / "exp.toml").write_text(
        '[data]\nname = "csv"\npath = "points.csv"\n'
        '[ledger]\nenabled = false\nkeys = "keystore:keys"\npassword_file = "pw.txt"\n'
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    cfg = load_config(folder / "exp.toml")
    assert cfg.data.path == str(folder.resolve() / "points.csv")
    assert cfg.ledger.keys == f"keystore:{folder.resolve() / 'keys'}"
    assert cfg.ledger.password_file == str(folder.resolve() / "pw.txt")
    assert len(load_data(cfg).y_train) + len(load_data(cfg).y_test) == 40
    # a --set value is typed on the command line: it stays relative to the working directory
    cfg = load_config(folder / "exp.toml", ['data.path="other.csv"'])
    assert cfg.data.path == "other.csv"
