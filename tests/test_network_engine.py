"""Real rounds annotated with simulated network time; deadline selection; async aggregation."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from helpers import tiny_config

from fedledger.audit import audit_run
from fedledger.engine import run_experiment
from fedledger.errors import ConfigError

NETWORK = {
    "deadline_s": 3.0,
    "selection": "deadline_aware",
    "block_rate": 2.0,
    "tiers": [
        {"name": "phone", "share": 0.5, "flops": 1e5, "dropout": 0.1},
        {"name": "edge", "share": 0.5, "flops": 1e7},
    ],
}


def test_rounds_carry_network_columns_and_the_audit_recomputes_the_selection(
    tmp_path: Path,
) -> None:
    cfg = tiny_config(
        federation={"num_clients": 8, "clients_per_round": 3, "rounds": 3}, network=NETWORK
    )
    out = tmp_path / "net"
    s = run_experiment(cfg, out=out, progress=False)
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert {"net_train_s", "net_upload_s", "net_block_s", "net_round_s", "simulated_time_s"} <= set(
        rows[0]
    )
    times = [float(r["simulated_time_s"]) for r in rows]
    assert times == sorted(times) and times[-1] == pytest.approx(s["simulated_time_s"])
    assert all(float(r["net_round_s"]) > 0 for r in rows)
    assert (out / "accuracy_time.png").exists()
    report = audit_run(out)
    assert report.ok, report.describe()


def test_deadline_aware_picks_only_devices_that_make_the_deadline(tmp_path: Path) -> None:
    cfg = tiny_config(
        federation={"num_clients": 8, "clients_per_round": 3, "rounds": 2}, network=NETWORK
    )
    from fedledger.federation import build_federation
    from fedledger.protocol.network import NetworkAnnotator

    net = NetworkAnnotator(cfg, build_federation(cfg))
    cands = net.net.candidates(
        0, update_bytes=net.update_bytes, flops_per_sample=net.flops, samples=net.samples, epochs=1
    )
    chosen = net.select(0, 3, None)
    assert all(cands.expected_s[c] <= 3.0 for c in chosen)


def test_async_fedbuff_runs_in_simulated_time(tmp_path: Path) -> None:
    cfg = tiny_config(
        federation={"num_clients": 6, "clients_per_round": 3, "rounds": 4},
        network=NETWORK | {"selection": "random"},
        ledger={"enabled": False},
        asynchronous={"buffer_size": 3, "concurrency": 3},
    )
    s = run_experiment(cfg, out=tmp_path / "a", progress=False)
    assert s["updates"] == 12 and s["mode"] == "fedbuff"
    rows = list(csv.DictReader((tmp_path / "a/metrics.csv").open()))
    assert len(rows) == 4  # one aggregation per 3 arrivals
    assert [float(r["simulated_time_s"]) for r in rows] == sorted(
        float(r["simulated_time_s"]) for r in rows
    )


def test_async_with_the_ledger_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ledger.enabled = false"):  # as the config is read
        run_experiment(
            tiny_config(network=NETWORK, asynchronous={"buffer_size": 2}),
            out=tmp_path / "x",
            progress=False,
        )
    assert not (tmp_path / "x").exists()


def test_bad_network_parameters_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="network.block_rate"):
        tiny_config(network={"block_rate": -1.0})
    with pytest.raises(ConfigError, match="network.uplink.bandwidth_hz"):
        tiny_config(network={"uplink": {"bandwidth_hz": 0}})


def test_an_impossible_deadline_fails_before_the_first_round(tmp_path: Path) -> None:
    cfg = tiny_config(network=NETWORK | {"deadline_s": 1e-6})
    with pytest.raises(ConfigError, match="deadline"):
        run_experiment(cfg, out=tmp_path / "d", progress=False)
    assert not (tmp_path / "d" / "ledger").exists()
