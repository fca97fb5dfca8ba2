"""The engine-facing API (NetworkModel), heterogeneous tiers, roles and layered chains."""

from __future__ import annotations

import numpy as np
import pytest

from fedledger.netsim import NetworkModel
from fedledger.netsim.config import load_network_config
from fedledger.netsim.devices import build_population, tier_counts
from fedledger.netsim.hierarchy import compare_layered
from fedledger.netsim.roles import gini, role_outcome, top_share
from fedledger.netsim.rounds import COLUMNS

TIERS = [
    {
        "name": "phone",
        "share": 0.6,
        "flops": 1e9,
        "distance_m": [50, 400],
        "availability": 0.9,
        "dropout": 0.05,
    },
    {"name": "vehicle", "share": 0.3, "flops": 1e10, "distance_m": [20, 200]},
    {"name": "edge_server", "share": 0.1, "flops": 1e12, "distance_m": [5, 20]},
]
WORK = dict(update_bytes=20_000, flops_per_sample=1e6, epochs=1)


def hetero(**over: object) -> NetworkModel:
    section = {"tiers": TIERS, "uplink": {"fading": "rayleigh", "frame_error_rate": 0.02}, **over}
    return NetworkModel.from_config(section, seed=11, num_devices=200)


def test_round_timing_columns_sum_to_round() -> None:
    net = hetero()
    t = net.simulate_round(0, list(range(0, 200, 10)), 20_000, 1e6, [200] * 20, 1)
    for c in (*COLUMNS, "net_round_s", "net_attempts", "net_delivered"):
        assert c in t and np.isfinite(t[c])
    assert sum(t[c] for c in COLUMNS) == pytest.approx(t["net_round_s"])
    assert t.completion_s.shape == (20,) and t.delivered.sum() == t["net_delivered"]
    assert dict(t)["net_round_s"] == t["net_round_s"]


def test_rounds_are_reproducible_and_depend_on_the_round() -> None:
    a = hetero().simulate_round(3, [1, 2, 3], 20_000, 1e6, [100, 100, 100], 1)
    b = hetero().simulate_round(3, [1, 2, 3], 20_000, 1e6, [100, 100, 100], 1)
    c = hetero().simulate_round(4, [1, 2, 3], 20_000, 1e6, [100, 100, 100], 1)
    assert dict(a) == dict(b) and dict(a) != dict(c)


def test_deadline_drops_stragglers_and_bounds_the_phase() -> None:
    net = hetero(deadline_s=1.0)
    who = np.arange(200)
    t = net.simulate_round(0, who, 20_000, 1e6, np.full(200, 200), 1)
    # phones need 0.2 s of training at 1 GFLOP/s; slow links and dropouts miss the deadline
    assert np.all(t.completion_s[t.delivered] <= 1.0)
    assert 0 < t["net_delivered"] < 200
    assert t["net_train_s"] + t["net_upload_s"] + t["net_wait_s"] == pytest.approx(1.0)
    offline = ~net.online(0)
    assert not t.delivered[offline].any()


def test_candidates_and_selection() -> None:
    net = hetero(deadline_s=2.0, selection="deadline_aware")
    samples = np.full(200, 200)
    c = net.candidates(5, update_bytes=20_000, flops_per_sample=1e6, samples=samples, epochs=1)
    assert c.available.tolist() == net.online(5).tolist()
    idx = net.select(c, 20, round=5)
    assert len(idx) == 20 and np.all(c.expected_s[idx] <= 2.0) and c.available[idx].all()
    assert net.select(c, 20, round=5).tolist() == idx.tolist()
    assert len(net.select(c, 20, round=5, policy="random")) == 20


def test_deadline_aware_rounds_are_shorter_than_random() -> None:
    # phones need 0.5 s of training: a 0.3 s deadline leaves only vehicles and edge servers
    net = hetero(deadline_s=0.3)
    samples = np.full(200, 500)
    phase = {"random": 0.0, "deadline_aware": 0.0}
    delivered = {"random": 0.0, "deadline_aware": 0.0}
    for rnd in range(20):
        c = net.candidates(
            rnd, update_bytes=20_000, flops_per_sample=1e6, samples=samples, epochs=1
        )
        for policy in phase:
            who = net.select(c, 20, round=rnd, policy=policy)
            t = net.simulate_round(rnd, who, 20_000, 1e6, samples[who], 1)
            phase[policy] += t["net_train_s"] + t["net_upload_s"] + t["net_wait_s"]
            delivered[policy] += t["net_delivered"]
    assert phase["random"] == pytest.approx(20 * 0.3)  # always waits for the deadline
    assert phase["deadline_aware"] < 0.5 * phase["random"]
    assert delivered["deadline_aware"] > 2 * delivered["random"]


def test_tiers_split_by_share() -> None:
    assert tier_counts([0.6, 0.3, 0.1], 7).tolist() == [4, 2, 1]
    pop = build_population(load_network_config({"tiers": TIERS}), np.random.default_rng(0), 1000)
    assert np.bincount(pop.tier).tolist() == [600, 300, 100]
    assert pop.flops[pop.tier == 2].min() == 1e12


def test_async_schedule_from_the_model() -> None:
    net = hetero()
    ev = net.async_schedule(
        concurrency=20, buffer_size=5, num_updates=100, samples=np.full(200, 200), **WORK
    )
    assert len(ev) == 100 and ev[-1].version == 20
    assert all(b.time_s >= a.time_s for a, b in zip(ev, ev[1:], strict=False))


def test_gini_and_top_share() -> None:
    assert gini([1, 1, 1, 1]) == 0.0
    assert gini([0, 0, 0, 4]) == pytest.approx(0.75)
    assert top_share([1] * 9 + [91], 0.1) == pytest.approx(0.91)


def test_compute_rich_miners_concentrate_rewards() -> None:
    pop = build_population(load_network_config({"tiers": TIERS}), np.random.default_rng(0), 500)
    rng = np.random.default_rng(0)
    mixed = role_outcome(pop, 0.5, samples=200, blocks=20_000, rule="random", rng=rng)
    rich = role_outcome(pop, 0.1, samples=200, blocks=20_000, rule="richest", rng=rng)
    # when edge servers mine among phones they win nearly every block
    assert mixed.miner_top10_share > 0.8 and mixed.miner_gini > 0.8
    assert rich.hash_power_flops > mixed.hash_power_flops * 0.9
    assert rich.training_samples > mixed.training_samples


def test_layered_chains_beat_a_flat_chain() -> None:
    cfg = load_network_config({"num_devices": 400})
    pop = build_population(cfg, np.random.default_rng(0))
    flat, *layered = compare_layered(cfg, pop, [1, 4, 8], rounds=5, rng=np.random.default_rng(1))
    assert flat.main_chain_tx == 400 and layered[0].main_chain_tx == 4
    assert all(r.round_latency_s < flat.round_latency_s for r in layered)
    assert all(r.updates_per_s > flat.updates_per_s for r in layered)
