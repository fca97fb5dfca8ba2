"""The vectorised client backend against the sequential reference (train_local): the same
per-client updates, losses and generator streams, the same global model, within 1e-5; a
ledger run on it audits clean; what it cannot train is refused with a ConfigError."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import tiny_config
from safetensors.torch import load_file
from torch import nn

from fedledger.audit import audit_run
from fedledger.client.local import check_backend
from fedledger.client.trainers import TRAINERS, register_trainer
from fedledger.client.training import LocalResult, train_local
from fedledger.client.vectorised import auto_chunk, check_vectorisable, train_vectorised
from fedledger.engine import run_experiment
from fedledger.errors import ConfigError
from fedledger.models import create_model, get_flat_params, register_model
from fedledger.models.logreg import LogRegConfig
from fedledger.models.registry import MODELS as MODEL_TABLE

TOL = 1e-5
MODELS: dict[str, tuple[tuple[int, ...], dict[str, Any]]] = {
    "logreg": ((64,), {}),
    "mlp": ((64,), {"hidden": [32, 16]}),
    "cnn": ((1, 8, 8), {"channels": [4, 6], "kernel_size": 3, "hidden": 8}),
}
SETTINGS: dict[str, dict[str, Any]] = {
    "sgd": {},
    "momentum_wd_prox": {"momentum": 0.9, "weight_decay": 1e-3, "proximal_mu": 0.1},
    "adam": {"optimizer": "adam", "weight_decay": 1e-3, "proximal_mu": 0.05},
}
SIZES = [5, 17, 40, 1, 33, 8]  # ragged: 1 to 5 batches of 8, full and partial last batches


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """One intra-op thread, as a run's default ``threads`` (a multi-threaded kernel can stall
    on 2 shared cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _clients(shape: tuple[int, ...]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    return [
        (torch.randn(n, *shape, generator=g), torch.randint(0, 10, (n,), generator=g))
        for n in SIZES
    ]


def _both(
    name: str, settings: dict[str, Any], *, chunk: int | None
) -> tuple[list[LocalResult], list[LocalResult], list[torch.Generator], list[torch.Generator]]:
    shape, params = MODELS[name]
    torch.manual_seed(0)
    model = create_model(name, input_shape=shape, num_classes=10, **params)
    start = get_flat_params(model)
    data = _clients(shape)
    kw = {"epochs": 3, "batch_size": 8, "lr": 0.05, **settings}
    gs = [torch.Generator().manual_seed(100 + i) for i in range(len(data))]
    seq = [
        train_local(model, start, x, y, generator=g, **kw)
        for (x, y), g in zip(data, gs, strict=True)
    ]
    gv = [torch.Generator().manual_seed(100 + i) for i in range(len(data))]
    vec = train_vectorised(
        model, start, [(x, y, g) for (x, y), g in zip(data, gv, strict=True)], chunk=chunk, **kw
    )
    return seq, vec, gs, gv


@pytest.mark.parametrize("setting", sorted(SETTINGS))
@pytest.mark.parametrize("name", sorted(MODELS))
def test_per_client_updates_and_losses_match_the_sequential_loop(name: str, setting: str) -> None:
    """Ragged clients, several epochs, chunked: every client's delta and loss equal
    train_local's within 1e-5, and its generator has advanced exactly as far (the same
    permutations were drawn)."""
    seq, vec, gs, gv = _both(name, SETTINGS[setting], chunk=4)
    assert len(vec) == len(seq)
    for s, v, a, b in zip(seq, vec, gs, gv, strict=True):
        assert v.num_samples == s.num_samples
        assert v.delta.shape == s.delta.shape and v.delta.dtype == torch.float32
        assert float((v.delta - s.delta).abs().max()) <= TOL
        assert abs(v.loss - s.loss) <= TOL
        assert torch.equal(a.get_state(), b.get_state())


def test_masked_clients_are_unaffected_by_their_chunk() -> None:
    """A 1-sample client trained beside 40-sample ones (masked padding and masked steps) gets
    the update it gets alone, and chunking changes nothing beyond rounding."""
    alone, _, _, _ = _both("mlp", SETTINGS["momentum_wd_prox"], chunk=None)
    _, one, _, _ = _both("mlp", SETTINGS["momentum_wd_prox"], chunk=1)
    _, every, _, _ = _both("mlp", SETTINGS["momentum_wd_prox"], chunk=len(SIZES))
    for s, a, b in zip(alone, one, every, strict=True):
        assert float((a.delta - b.delta).abs().max()) <= 1e-6
        assert float((a.delta - s.delta).abs().max()) <= TOL


def test_inputs_are_left_unmodified() -> None:
    shape, params = MODELS["mlp"]
    model = create_model("mlp", input_shape=shape, num_classes=10, **params)
    start = get_flat_params(model)
    data = _clients(shape)
    copies = [(x.clone(), y.clone()) for x, y in data]
    before = start.clone()
    train_vectorised(
        model,
        start,
        [(x, y, torch.Generator().manual_seed(0)) for x, y in data],
        epochs=1,
        batch_size=8,
        lr=0.1,
    )
    assert torch.equal(start, before) and torch.equal(get_flat_params(model), before)
    assert all(
        torch.equal(x, a) and torch.equal(y, b) for (x, y), (a, b) in zip(data, copies, strict=True)
    )


def _final_model(out: Path) -> torch.Tensor:
    return next(iter(load_file(str(out / "model.safetensors")).values()))


@pytest.mark.parametrize(
    "model",
    [
        {"name": "logreg"},
        {"name": "mlp", "hidden": [16]},
        {"name": "cnn", "channels": [4], "kernel_size": 3},
    ],
)
def test_global_model_matches_the_sequential_backend(model: dict[str, Any], tmp_path: Path) -> None:
    """Whole runs (ledger off, non-IID ragged clients, momentum, weight decay, FedProx, 2
    epochs, 4 rounds): the two backends' global models agree within 1e-5."""
    fed = {
        "num_clients": 6,
        "rounds": 4,
        "local_epochs": 2,
        "momentum": 0.5,
        "weight_decay": 1e-4,
        "proximal_mu": 0.01,
        "lr": 0.05,
    }
    data = {"partition": "dirichlet", "alpha": 0.3}
    ledger = {"enabled": False}
    seq = tiny_config(model=model, federation=fed, data=data, ledger=ledger)
    vec = tiny_config(
        model=model,
        federation={**fed, "backend": "vectorised", "vectorised_chunk": 4},
        data=data,
        ledger=ledger,
    )
    run_experiment(seq, out=tmp_path / "seq", progress=False)
    run_experiment(vec, out=tmp_path / "vec", progress=False)
    a, b = _final_model(tmp_path / "seq"), _final_model(tmp_path / "vec")
    assert float((a - b).abs().max()) <= TOL


def test_ledger_run_with_attacks_and_fltrust_audits_clean(tmp_path: Path) -> None:
    """The recorded config names the backend; FLTrust's root-data update is re-trained by the
    audit with the same backend; a data-poisoning attack trains (vectorised) on its poisoned
    data."""
    cfg = tiny_config(
        federation={"num_clients": 6, "rounds": 2, "backend": "vectorised", "momentum": 0.5},
        aggregation={"name": "fltrust"},
        attack={"name": "label_flip", "clients": [0, 1]},
    )
    out = tmp_path / "run"
    run_experiment(cfg, out=out, progress=False)
    assert 'backend = "vectorised"' in (out / "config.toml").read_text()
    report = audit_run(out)
    assert report.ok, report.describe()


def test_model_poisoning_and_free_riders_on_the_ledger_audit_clean(tmp_path: Path) -> None:
    cfg = tiny_config(
        federation={"num_clients": 6, "rounds": 2, "backend": "vectorised"},
        aggregation={"name": "median"},
        attack={"name": "free_rider", "clients": [2]},
    )
    out = tmp_path / "run"
    run_experiment(cfg, out=out, progress=False)
    report = audit_run(out)
    assert report.ok, report.describe()


def _plugin_loop(
    model: nn.Module,
    global_params: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    params: Any,
    **settings: Any,
) -> LocalResult:
    return train_local(model, global_params, x, y, **settings)


class _Tanh(nn.Module):
    """A plugin model the vectorised backend has no batched form for (tanh logits)."""

    def __init__(
        self, config: LogRegConfig, *, input_shape: tuple[int, ...], num_classes: int
    ) -> None:
        super().__init__()
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1)).tanh()


@pytest.fixture(scope="module")
def plugins() -> Iterator[None]:
    """A plugin training loop and a plugin model, registered for this module only (the other
    test modules see the built-ins alone)."""
    register_trainer("vectorised_test_loop")(_plugin_loop)
    register_model("vectorised_test_tanh", config=LogRegConfig)(_Tanh)
    yield
    del TRAINERS._items["vectorised_test_loop"]
    del MODEL_TABLE._items["vectorised_test_tanh"]


def test_a_plugin_training_loop_is_refused_at_config_time(plugins: None) -> None:
    with pytest.raises(ConfigError, match=r"vectorised.*vectorised_test_loop.*sequential"):
        tiny_config(federation={"backend": "vectorised", "trainer": "vectorised_test_loop"})
    tiny_config(federation={"trainer": "vectorised_test_loop"})  # sequential takes it


def test_a_model_without_a_batched_form_is_refused_by_name() -> None:
    class Plain(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(64, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x.flatten(1)).tanh()

    with pytest.raises(ConfigError, match=r"cannot train model Plain.*backend = 'sequential'"):
        check_vectorisable(Plain())
    with pytest.raises(ConfigError, match="cannot train model Plain"):
        check_backend(tiny_config(federation={"backend": "vectorised"}), Plain())
    check_backend(tiny_config(), Plain())  # the sequential backend trains anything
    with pytest.raises(ConfigError, match="cannot train model"):
        train_vectorised(
            Plain(),
            torch.zeros(650),
            [(torch.zeros(2, 64), torch.zeros(2, dtype=torch.int64), torch.Generator())],
            epochs=1,
            batch_size=2,
            lr=0.1,
        )


def test_a_vectorised_run_is_reproducible_and_its_chunk_bound_is_positive(tmp_path: Path) -> None:
    """The same config gives the bit-identical global model (what resume and the audit rely
    on); the automatic chunk fits at least one client and no more than the memory bound."""
    cfg = tiny_config(federation={"backend": "vectorised"}, ledger={"enabled": False})
    a = run_experiment(cfg, out=tmp_path / "a", progress=False)
    b = run_experiment(cfg, out=tmp_path / "b", progress=False)
    assert a["global_model_hash"] == b["global_model_hash"]
    small = create_model("mlp", input_shape=(64,), num_classes=10, hidden=[16])
    big = create_model("mlp", input_shape=(3, 32, 32), num_classes=10, hidden=[2048, 2048])
    assert auto_chunk(small, batch_size=32, input_shape=(64,)) > 1000
    assert 1 <= auto_chunk(big, batch_size=32, input_shape=(3, 32, 32)) < 10


def test_a_run_with_a_plugin_model_is_refused_before_it_starts(
    plugins: None, tmp_path: Path
) -> None:
    """The run stops at start, naming the model, and writes nothing; sequential runs it."""
    model = {"name": "vectorised_test_tanh"}
    cfg = tiny_config(model=model, federation={"backend": "vectorised"})
    with pytest.raises(ConfigError, match="cannot train model _Tanh"):
        run_experiment(cfg, out=tmp_path / "vec", progress=False)
    assert not (tmp_path / "vec").exists()
    seq = tiny_config(model=model, ledger={"enabled": False}, federation={"rounds": 1})
    run_experiment(seq, out=tmp_path / "seq", progress=False)


def test_with_partial_participation_the_first_round_agrees(tmp_path: Path) -> None:
    """A round's selection seed derives from the previous global model's hash: the backends'
    one-ulp differences make later rounds pick other clients (the runs then differ as two
    seeds do), but a round from the same model agrees within 1e-5."""
    fed = {"num_clients": 8, "clients_per_round": 3, "rounds": 1, "momentum": 0.5}
    for backend in ("sequential", "vectorised"):
        cfg = tiny_config(federation={**fed, "backend": backend}, ledger={"enabled": False})
        run_experiment(cfg, out=tmp_path / backend, progress=False)
    a, b = _final_model(tmp_path / "sequential"), _final_model(tmp_path / "vectorised")
    assert float((a - b).abs().max()) <= TOL
