"""The [network] section: defaults, the example, and clear ConfigErrors for bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedledger.cli.netsim import read_network_section
from fedledger.errors import ConfigError
from fedledger.netsim import NetworkModel, load_network_config
from fedledger.netsim.sweep import run_point

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "netsim_blockfl.toml"


def test_defaults_and_example_are_valid() -> None:
    cfg = load_network_config({})
    assert cfg.shares == pytest.approx((0.1,) * 10)
    section, seed = read_network_section(EXAMPLE)
    ex = load_network_config(section)
    assert ex.num_miners == 10 and ex.block_bytes == 80 + 100 * 20_000 and seed == 7


@pytest.mark.parametrize(
    ("section", "words"),
    [
        ({"block_rate": -1.0}, ["network.block_rate", "greater than 0", "-1"]),
        ({"block_rate": 0}, ["network.block_rate", "greater than 0"]),
        ({"uplink": {"bandwidth_hz": 0}}, ["network.uplink.bandwidth_hz", "greater than 0"]),
        ({"miner_link": {"bandwidth_hz": -5}}, ["network.miner_link.bandwidth_hz"]),
        ({"blok_rate": 1.0}, ["network.blok_rate", "unknown key"]),
        ({"block_size": "big"}, ["network.block_size", "integer"]),
        ({"tiers": [{"name": "a", "share": 0.5}]}, ["shares must sum to 1"]),
        ({"hash_power": [1.0, 2.0]}, ["hash_power has 2 entries", "num_miners is 10"]),
        ({"uplink": {"frame_error_rate": 1.0}}, ["network.uplink.frame_error_rate", "less than 1"]),
        ({"tiers": [{"distance_m": [10, 5]}]}, ["distance_m"]),
        ({"consensus": "raft"}, ["network.consensus", "raft", "pow"]),
        ({"selection": "oldest"}, ["network.selection", "deadline_aware"]),
        ({"clients_per_round": 500}, ["clients_per_round=500", "num_devices=100"]),
    ],
)
def test_bad_values_name_the_field(section: dict[str, object], words: list[str]) -> None:
    with pytest.raises(ConfigError) as err:
        load_network_config(section)
    for w in words:
        assert w in str(err.value)


def test_pbft_needs_f_below_n_over_3() -> None:
    with pytest.raises(ConfigError, match=r"network.pbft.faulty=2 .* f < n/3.*n >= 3f \+ 1 = 7"):
        load_network_config({"consensus": "pbft", "num_miners": 6, "pbft": {"faulty": 2}})
    with pytest.raises(ConfigError, match="crashed=2 exceeds faulty=1"):
        load_network_config({"consensus": "pbft", "num_miners": 4, "pbft": {"crashed": 2}})
    assert load_network_config({"consensus": "pbft", "num_miners": 7, "pbft": {"faulty": 2}})


def test_impossible_deadline() -> None:
    with pytest.raises(
        ConfigError, match=r"network.deadline_s=0.001 s is impossible.*fastest device"
    ):
        run_point(load_network_config({"deadline_s": 0.001}), 0)
    net = NetworkModel.from_config({"deadline_s": 0.001}, seed=0)
    with pytest.raises(ConfigError, match="impossible"):
        net.candidates(0, update_bytes=20_000, flops_per_sample=1e5, samples=200, epochs=1)
    net = NetworkModel.from_config({"deadline_s": 5.0}, seed=0)
    with pytest.raises(ConfigError, match="impossible"):
        net.simulate_round(0, [0, 1], 20_000, 1e9, [200, 200], 1)  # 20 s of training each


def test_missing_or_broken_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        read_network_section(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("seed = [\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        read_network_section(bad)
