"""FL strategies (issue 10): FedProx's proximal term, the server optimisers (FedAvgM, FedAdagrad,
FedYogi, FedAdam), federated evaluation. Known answers against float64 references and
autograd, audited runs with each strategy, and an aggregator that steps another optimiser
than its configuration says."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import tiny_config

from fedledger.aggregation import server_opt
from fedledger.aggregation.server_opt import (
    ServerOptimizer,
    create_server_optimizer,
    server_optimizer_names,
)
from fedledger.audit import audit_run
from fedledger.client import train_local
from fedledger.client.local import evaluation_clients
from fedledger.config import ServerConfig, config_from_dict
from fedledger.data import Dataset, load_dataset
from fedledger.engine import run_experiment
from fedledger.errors import ConfigError
from fedledger.models import create_model, get_flat_params, set_flat_params

ADAPTIVE = ["fedadagrad", "fedyogi", "fedadam"]


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset("digits", seed=0, max_train_samples=200, max_test_samples=50)


def _mlp(ds: Dataset, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_model("mlp", input_shape=ds.input_shape, num_classes=ds.num_classes)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --- server optimisers: known answers -------------------------------------------------------


def _reddi_reference(
    name: str,
    x0: np.ndarray,
    deltas: list[np.ndarray],
    *,
    lr: float,
    b1: float,
    b2: float,
    tau: float,
) -> np.ndarray:
    """Reddi et al. 2021, Algorithm 2, written out in float64 from the paper: m_{-1} = 0,
    v_{-1} = tau^2, no bias correction."""
    x, m, v = x0.astype(np.float64), np.zeros_like(x0, np.float64), np.full(x0.shape, tau**2)
    for d in deltas:
        d = d.astype(np.float64)
        m = b1 * m + (1 - b1) * d
        if name == "fedadagrad":
            v = v + d**2
        elif name == "fedyogi":
            v = v - (1 - b2) * d**2 * np.sign(v - d**2)
        else:
            v = b2 * v + (1 - b2) * d**2
        x = x + lr * m / (np.sqrt(v) + tau)
    return x


@pytest.mark.parametrize("name", ADAPTIVE)
def test_adaptive_steps_match_reddi_algorithm_2_in_float64(name: str) -> None:
    """One and three rounds of FedAdagrad / FedYogi / FedAdam with the documented defaults
    (eta 1e-2, beta1 0.9, beta2 0.99, tau 1e-3) equal the float64 reference up to float32."""
    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(257, generator=g)
    deltas = [torch.randn(257, generator=g) * s for s in (1e-1, 1e-3, 3e-2)]  # below and above tau
    for rounds in (1, 3):
        opt = create_server_optimizer(ServerConfig(optimizer=name), dim=257)
        x = x0
        for d in deltas[:rounds]:
            x = opt.step(x, d)
        want = _reddi_reference(
            name,
            x0.numpy(),
            [d.numpy() for d in deltas[:rounds]],
            lr=1e-2,
            b1=0.9,
            b2=0.99,
            tau=1e-3,
        )
        assert x.dtype == torch.float32
        np.testing.assert_allclose(x.numpy(), want, rtol=1e-6, atol=1e-7)
        assert not np.allclose(want, x0.numpy() + sum(d.numpy() for d in deltas[:rounds]))


def test_fedadam_first_step_is_the_closed_form() -> None:
    """From m = 0, v = tau^2 one FedAdam step is eta·0.1Δ / (sqrt(0.99 tau^2 + 0.01 Δ^2) + tau):
    about eta·sign(Δ) where |Δ| >> tau."""
    delta = torch.tensor([1.0, -0.5, 1e-4, 0.0])
    x = ServerOptimizer(
        "fedadam", dim=4, hyper={"lr": 0.1, "beta1": 0.9, "beta2": 0.99, "tau": 1e-3}
    ).step(torch.zeros(4), delta)
    d = delta.double()
    want = 0.1 * 0.1 * d / (torch.sqrt(0.99 * 1e-6 + 0.01 * d**2) + 1e-3)
    assert torch.allclose(x.double(), want, rtol=1e-6, atol=0)
    assert x[3] == 0 and abs(float(x[0]) - 0.1) < 2e-3


def test_momentum_is_fedavgm_heavy_ball() -> None:
    """FedAvgM (Hsu et al. 2019): m <- beta m + Δ; x <- x + eta m, in float64 by hand."""
    g = torch.Generator().manual_seed(2)
    deltas = [torch.randn(33, generator=g) for _ in range(4)]
    opt = create_server_optimizer(ServerConfig(optimizer="momentum", lr=0.5, momentum=0.7), dim=33)
    x = x0 = torch.randn(33, generator=g)
    for d in deltas:
        x = opt.step(x, d)
    xr, m = x0.double(), torch.zeros(33, dtype=torch.float64)
    for d in deltas:
        m = 0.7 * m + d.double()
        xr = xr + 0.5 * m
    assert torch.allclose(x.double(), xr, rtol=1e-6, atol=1e-6)


def test_sgd_with_lr_one_and_no_server_section_are_plain_addition_bit_for_bit() -> None:
    g = torch.Generator().manual_seed(3)
    x, d = torch.randn(1000, generator=g), torch.randn(1000, generator=g) * 1e-3
    assert torch.equal(create_server_optimizer(None, dim=1000).step(x, d), x + d)
    assert torch.equal(create_server_optimizer(ServerConfig(), dim=1000).step(x, d), x + d)
    half = create_server_optimizer(ServerConfig(lr=0.5), dim=1000).step(x, d)
    assert torch.equal(half, x + 0.5 * d)


@pytest.mark.parametrize("name", ["momentum", *ADAPTIVE])
def test_steps_leave_their_inputs_unmodified_and_the_state_resumes(name: str) -> None:
    """state_dict() after two rounds, loaded into a fresh optimiser, takes the third step bit
    for bit as the original does; params and deltas are never written to."""
    g = torch.Generator().manual_seed(4)
    deltas = [torch.randn(50, generator=g) for _ in range(3)]
    kept = [d.clone() for d in deltas]
    x = x0 = torch.randn(50, generator=g)
    x0_kept = x0.clone()
    a = create_server_optimizer(ServerConfig(optimizer=name), dim=50)
    for d in deltas[:2]:
        x = a.step(x, d)
    b = create_server_optimizer(ServerConfig(optimizer=name), dim=50)
    b.load_state_dict(a.state_dict())
    assert b.steps == 2
    assert torch.equal(a.step(x, deltas[2]), b.step(x, deltas[2]))
    assert all(torch.equal(d, k) for d, k in zip(deltas, kept, strict=True))
    assert torch.equal(x0, x0_kept)
    fresh = create_server_optimizer(ServerConfig(optimizer=name), dim=50)
    assert not torch.equal(fresh.step(x, deltas[2]), b.step(x, deltas[2]))  # the state matters


def test_load_state_dict_refuses_another_optimizer_or_size() -> None:
    adam = create_server_optimizer(ServerConfig(optimizer="fedadam"), dim=8)
    with pytest.raises(ConfigError, match="not this run's 'fedyogi'"):
        create_server_optimizer(ServerConfig(optimizer="fedyogi"), dim=8).load_state_dict(
            adam.state_dict()
        )
    with pytest.raises(ConfigError, match=r"does not fit \(9,\)"):
        create_server_optimizer(ServerConfig(optimizer="fedadam"), dim=9).load_state_dict(
            adam.state_dict()
        )


def test_the_config_offers_exactly_the_registered_optimizers() -> None:
    offered = get_args(ServerConfig.model_fields["optimizer"].annotation)
    assert sorted(offered) == server_optimizer_names()


# --- FedProx ---------------------------------------------------------------------------------


def _reference_training(
    model: torch.nn.Module,
    w0: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    mu: float,
    epochs: int,
    batch_size: int,
    lr: float,
    momentum: float,
    gen: torch.Generator,
) -> torch.Tensor:
    """FedProx's local objective written out: CE + (mu/2)||w - w0||^2 on the flat vector, the
    gradient by autograd (mu = 0: the plain loop train_local ran before FedProx existed)."""
    set_flat_params(model, w0)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, foreach=False)
    n = len(y)
    for _ in range(epochs):
        order = torch.randperm(n, generator=gen)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x[idx]), y[idx])
            if mu > 0:
                flat = torch.cat([p.reshape(-1) for p in model.parameters()])
                loss = loss + mu / 2 * torch.sum((flat - w0) ** 2)
            loss.backward()
            opt.step()
    return get_flat_params(model) - w0


def test_mu_zero_is_bit_identical_to_the_plain_loop(digits: Dataset) -> None:
    model = _mlp(digits)
    w0 = get_flat_params(model)
    x, y = digits.x_train[:64], digits.y_train[:64]
    kw: dict[str, Any] = {"epochs": 2, "batch_size": 16, "lr": 0.1, "momentum": 0.5}
    got = train_local(model, w0, x, y, generator=_gen(5), proximal_mu=0.0, **kw)
    want = _reference_training(model, w0, x, y, mu=0.0, gen=_gen(5), **kw)
    assert torch.equal(got.delta, want)


@pytest.mark.parametrize("momentum", [0.0, 0.5])
def test_proximal_gradient_matches_autograd_of_the_explicit_loss(
    digits: Dataset, momentum: float
) -> None:
    model = _mlp(digits)
    w0 = get_flat_params(model)
    x, y = digits.x_train[:64], digits.y_train[:64]
    kw: dict[str, Any] = {"epochs": 2, "batch_size": 16, "lr": 0.1, "momentum": momentum}
    got = train_local(model, w0, x, y, generator=_gen(6), proximal_mu=0.7, **kw)
    want = _reference_training(model, w0, x, y, mu=0.7, gen=_gen(6), **kw)
    plain = train_local(model, w0, x, y, generator=_gen(6), **kw)
    assert torch.allclose(got.delta, want, rtol=1e-4, atol=1e-6)
    assert (got.delta - plain.delta).norm() > 100 * (got.delta - want).norm()


def test_a_large_mu_keeps_the_update_near_the_global_model(digits: Dataset) -> None:
    """The update shrinks as mu grows; at lr·mu = 1 every step restarts from w_global (w <-
    w0 - lr·g), so the update is one step's size, far below plain training's five epochs."""
    model = _mlp(digits)
    w0 = get_flat_params(model)
    x, y = digits.x_train[:100], digits.y_train[:100]
    norms = [
        float(
            train_local(
                model, w0, x, y, epochs=5, batch_size=10, lr=0.1, generator=_gen(7), proximal_mu=mu
            ).delta.norm()
        )
        for mu in (0.0, 0.1, 1.0, 10.0)
    ]
    assert norms == sorted(norms, reverse=True)
    assert norms[-1] < 0.2 * norms[0]


# --- configuration errors --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"federation": {"proximal_mu": -0.1}}, "federation.proximal_mu"),
        ({"server": {"optimizer": "adamw"}}, "server.optimizer"),
        ({"server": {"optimizer": "fedadam", "tau": 0.0}}, "server.tau"),
        ({"server": {"optimizer": "fedyogi", "beta2": 1.0}}, "server.beta2"),
        ({"server": {"lr": -1.0}}, "server.lr"),
        ({"server": {"optimizer": "sgd", "learning_rate": 1.0}}, "server.learning_rate"),
        ({"evaluation": {"fraction": 0.0}}, "evaluation.fraction"),
        ({"evaluation": {"fraction": 1.5}}, "evaluation.fraction"),
        ({"evaluation": {}}, "evaluation.fraction"),
    ],
)
def test_bad_strategy_values_are_config_errors_naming_the_key(raw: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        config_from_dict(raw)


def test_a_key_the_optimizer_does_not_take_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match=r"server\.momentum does not apply to .*'fedadam'"):
        create_server_optimizer(ServerConfig(optimizer="fedadam", momentum=0.9), dim=3)
    with pytest.raises(ConfigError, match=r"server\.beta2 does not apply to .*'fedadagrad'"):
        create_server_optimizer(ServerConfig(optimizer="fedadagrad", beta2=0.9), dim=3)
    with pytest.raises(ConfigError, match="proximal_mu must be a finite number >= 0"):
        train_local(
            torch.nn.Linear(2, 2),
            torch.zeros(6),
            torch.zeros(3, 2),
            torch.zeros(3, dtype=torch.int64),
            epochs=1,
            batch_size=2,
            lr=0.1,
            generator=_gen(0),
            proximal_mu=float("nan"),
        )


def test_the_asynchronous_engine_refuses_server_and_evaluation_sections() -> None:
    for section, value in (("server", {"optimizer": "fedadam"}), ("evaluation", {"fraction": 0.5})):
        raw = {"asynchronous": {}, "network": {}, "ledger": {"enabled": False}, section: value}
        with pytest.raises(ConfigError, match=rf"\[{section}\] applies to synchronous rounds"):
            config_from_dict(raw)


def test_the_evaluating_clients_are_a_seeded_draw_of_the_configured_share() -> None:
    cfg = tiny_config(federation={"num_clients": 10}, evaluation={"fraction": 0.3})
    draws = [evaluation_clients(cfg, r) for r in range(6)]
    assert all(len(d) == 3 and d == sorted(set(d)) for d in draws)
    assert draws == [evaluation_clients(cfg, r) for r in range(6)]
    assert len({tuple(d) for d in draws}) > 1  # a new draw each round
    assert evaluation_clients(tiny_config(), 0) == []
    one = tiny_config(federation={"num_clients": 10}, evaluation={"fraction": 0.01})
    assert len(evaluation_clients(one, 0)) == 1


# --- audited runs ----------------------------------------------------------------------------


def _strategy_config(optimizer: str | None, **extra: Any) -> Any:
    sections: dict[str, Any] = {
        "federation": {"proximal_mu": 0.01},
        "evaluation": {"fraction": 0.5},
        "data": {"partition": "dirichlet", "alpha": 0.3},
    }
    if optimizer is not None:
        sections["server"] = {"optimizer": optimizer}
    sections.update(extra)
    return tiny_config(**sections)


@pytest.fixture(scope="module")
def fedadam_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("fedadam") / "run"
    return out, run_experiment(_strategy_config("fedadam"), out=out, progress=False)


@pytest.mark.parametrize("optimizer", ["momentum", "fedadagrad", "fedyogi"])
def test_each_server_optimizer_with_fedprox_is_recorded_and_recomputed_by_the_audit(
    optimizer: str, tmp_path: Path
) -> None:
    out = tmp_path / optimizer
    summary = run_experiment(_strategy_config(optimizer), out=out, progress=False)
    plain = run_experiment(
        _strategy_config(None, ledger={"enabled": False}), out=tmp_path / "plain", progress=False
    )
    assert summary["global_model_hash"] != plain["global_model_hash"]
    report = audit_run(out)
    assert report.ok, report.describe()
    assert report.rounds == 3


def test_a_fedadam_run_with_federated_evaluation_audits_clean(fedadam_run) -> None:
    out, summary = fedadam_run
    report = audit_run(out)
    assert report.ok, report.describe()
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert len(rows) == 3 and all(0 <= float(r["federated_accuracy"]) <= 1 for r in rows)
    saved = json.loads((out / "summary.json").read_text())
    assert saved["final_federated_accuracy"] == float(rows[-1]["federated_accuracy"])
    assert saved["final_federated_loss"] == summary["final_federated_loss"]


def test_server_sgd_with_lr_one_and_mu_zero_give_todays_model(tmp_path: Path) -> None:
    """[server] optimizer = "sgd" (lr 1) and federation.proximal_mu = 0 change no hash."""
    off = {"ledger": {"enabled": False}}
    base = run_experiment(tiny_config(**off), out=tmp_path / "base", progress=False)
    same = run_experiment(
        tiny_config(server={"optimizer": "sgd", "lr": 1.0}, federation={"proximal_mu": 0.0}, **off),
        out=tmp_path / "same",
        progress=False,
    )
    assert same["global_model_hash"] == base["global_model_hash"]


class _Stateless:
    """An aggregator's optimiser that forgets its state every round."""

    def __init__(self, name: str, dim: int) -> None:
        self.name, self.dim = name, dim

    def step(self, params: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        return create_server_optimizer(ServerConfig(optimizer=self.name), dim=self.dim).step(
            params, delta
        )

    def state_dict(self) -> dict[str, Any]:  # what a checkpoint keeps: a fresh optimiser's
        return create_server_optimizer(ServerConfig(optimizer=self.name), dim=self.dim).state_dict()


@pytest.mark.parametrize(
    ("swap", "bad_rounds"),
    [
        ("fedyogi", [0, 1, 2]),  # another optimiser than config.toml's fedadam
        ("none", [0, 1, 2]),  # plain x + delta, as if there were no [server] section
        ("stateless", [1, 2]),  # fedadam, but m and v reset every round
    ],
)
def test_a_global_model_from_another_server_optimizer_is_caught(
    swap: str, bad_rounds: list[int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """config.toml (and its hash on-chain) says fedadam; the aggregator steps something else.
    The audit's replay of the optimiser and its state finds every round it got wrong."""

    def fake(cfg: ServerConfig | None, *, dim: int) -> Any:
        if swap == "stateless":
            return _Stateless("fedadam", dim)
        other = None if swap == "none" else ServerConfig(optimizer=swap)
        return create_server_optimizer(other, dim=dim)

    monkeypatch.setattr("fedledger.engine.experiment.create_server_optimizer", fake)
    out = tmp_path / swap
    run_experiment(_strategy_config("fedadam"), out=out, progress=False)
    report = audit_run(out)
    agg = [f for f in report.errors if f.check == "aggregation"]
    assert [f.round for f in agg] == bad_rounds, report.describe()
    assert all("with server optimizer fedadam" in f.message for f in agg)


def test_server_optimizer_module_cites_its_papers() -> None:
    doc = server_opt.__doc__ or ""
    assert "Reddi" in doc and "Algorithm 2" in doc and "Hsu" in doc


@pytest.mark.parametrize("where", ["metrics", "summary"])
def test_a_federated_metric_that_the_model_does_not_give_is_caught(
    fedadam_run, where: str, tmp_path: Path
) -> None:
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(fedadam_run[0], out)
    if where == "metrics":
        path = out / "metrics.csv"
        rows = list(csv.DictReader(path.open()))
        rows[1]["federated_accuracy"] = str(float(rows[1]["federated_accuracy"]) + 0.05)
        with path.open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
        want = ("metrics", "metrics.csv line 3: federated_accuracy", 1)
    else:
        path = out / "summary.json"
        s = json.loads(path.read_text())
        s["final_federated_loss"] += 0.01
        path.write_text(json.dumps(s))
        want = ("outputs", "final_federated_loss", None)
    report = audit_run(out)
    assert [(f.check, f.round) for f in report.errors] == [(want[0], want[2])], report.describe()
    assert want[1] in report.errors[0].message
