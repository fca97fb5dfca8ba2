"""Local training and evaluation: known answers, determinism, no state leaking between clients,
failure paths, and the FedAvg acceptance check on digits."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
import torch

from fedledger.client import LocalResult, evaluate, optimizer_names, train_local
from fedledger.data import Dataset, load_dataset, partition
from fedledger.errors import ConfigError, DataError, ModelError
from fedledger.models import create_model, get_flat_params, set_flat_params


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    # tiny models: one intra-op thread is much faster on a busy 2-core machine
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset("digits", seed=0)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def mlp(ds: Dataset, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_model("mlp", input_shape=ds.input_shape, num_classes=ds.num_classes)


def test_one_full_batch_sgd_step_known_answer() -> None:
    # zero weights -> uniform softmax: loss = log K, grad_W = (1/K - onehot)^T x / N
    torch.manual_seed(0)
    x = torch.randn(6, 4)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    model = create_model("logreg", input_shape=(4,), num_classes=3)
    zero = torch.zeros_like(get_flat_params(model))
    res = train_local(model, zero, x, y, epochs=1, batch_size=6, lr=0.5, generator=gen(0))
    resid = torch.full((6, 3), 1 / 3) - torch.nn.functional.one_hot(y, 3).float()
    expected_w = -0.5 * resid.T @ x / 6  # (3, 4)
    expected_b = -0.5 * resid.mean(0)  # (3,)
    assert torch.allclose(res.delta, torch.cat([expected_w.flatten(), expected_b]), atol=1e-6)
    assert res.num_samples == 6 and math.isclose(res.loss, math.log(3), rel_tol=1e-6)
    assert res.delta.dtype == torch.float32 and res.delta.shape == (15,)


def test_delta_is_trained_minus_global(digits: Dataset) -> None:
    model = mlp(digits)
    g = get_flat_params(model)
    x, y = digits.x_train[:50], digits.y_train[:50]
    res = train_local(model, g, x, y, epochs=2, batch_size=16, lr=0.1, generator=gen(1))
    assert isinstance(res, LocalResult) and res.num_samples == 50
    assert torch.equal(res.delta, get_flat_params(model) - g)
    assert res.delta.abs().sum() > 0 and torch.isfinite(res.delta).all()


@pytest.mark.parametrize(
    ("optimizer", "momentum", "weight_decay"),
    [("sgd", 0.0, 0.0), ("sgd", 0.9, 1e-4), ("adam", 0.0, 0.0)],
)
def test_bit_identical_with_same_generator_state(
    digits: Dataset, optimizer: str, momentum: float, weight_decay: float
) -> None:
    model = mlp(digits)
    g = get_flat_params(model)
    x, y = digits.x_train[:70], digits.y_train[:70]
    kw = dict(
        epochs=3,
        batch_size=8,
        lr=0.05,
        optimizer=optimizer,
        momentum=momentum,
        weight_decay=weight_decay,
    )
    a = train_local(model, g, x, y, generator=gen(7), **kw)  # type: ignore[arg-type]
    b = train_local(mlp(digits, seed=99), g, x, y, generator=gen(7), **kw)  # type: ignore[arg-type]
    c = train_local(model, g, x, y, generator=gen(8), **kw)  # type: ignore[arg-type]
    assert torch.equal(a.delta, b.delta) and a.loss == b.loss
    assert not torch.equal(a.delta, c.delta)


def test_shared_model_leaks_no_state_between_clients(digits: Dataset) -> None:
    # client B trained after A on the same model object == B trained on a fresh model
    shared = mlp(digits)
    g = get_flat_params(shared)
    xa, ya = digits.x_train[:40], digits.y_train[:40]
    xb, yb = digits.x_train[40:90], digits.y_train[40:90]
    kw = dict(epochs=2, batch_size=16, lr=0.1, optimizer="sgd", momentum=0.9)
    train_local(shared, g, xa, ya, generator=gen(1), **kw)  # type: ignore[arg-type]
    after_a = train_local(shared, g, xb, yb, generator=gen(2), **kw)  # type: ignore[arg-type]
    fresh = train_local(mlp(digits, 5), g, xb, yb, generator=gen(2), **kw)  # type: ignore[arg-type]
    assert torch.equal(after_a.delta, fresh.delta)


def test_generator_advances_each_epoch(digits: Dataset) -> None:
    # 2 epochs with one generator == epoch 1 then epoch 2 continuing the same generator
    model = mlp(digits)
    g0 = get_flat_params(model)
    x, y = digits.x_train[:33], digits.y_train[:33]
    both = train_local(model, g0, x, y, epochs=2, batch_size=10, lr=0.1, generator=gen(3))
    g = gen(3)
    first = train_local(model, g0, x, y, epochs=1, batch_size=10, lr=0.1, generator=g)
    second = train_local(
        model, g0 + first.delta, x, y, epochs=1, batch_size=10, lr=0.1, generator=g
    )
    assert torch.allclose(both.delta, first.delta + second.delta, atol=1e-6)
    assert both.loss == second.loss  # the loss reported is the last epoch's


def test_local_training_learns(digits: Dataset) -> None:
    model = mlp(digits)
    g = get_flat_params(model)
    acc0, loss0 = evaluate(model, g, digits.x_test, digits.y_test)
    res = train_local(
        model, g, digits.x_train, digits.y_train, epochs=3, batch_size=32, lr=0.2, generator=gen(0)
    )
    acc, loss = evaluate(model, g + res.delta, digits.x_test, digits.y_test)
    assert acc0 < 0.3 and acc > 0.9 and loss < loss0


def test_evaluate_known_answer_and_batching(digits: Dataset) -> None:
    model = create_model("logreg", input_shape=digits.input_shape, num_classes=10)
    zero = torch.zeros_like(get_flat_params(model))
    acc, loss = evaluate(model, zero, digits.x_test, digits.y_test)
    # all logits equal: argmax picks class 0, loss = log 10
    assert acc == int((digits.y_test == 0).sum()) / len(digits.y_test)
    assert math.isclose(loss, math.log(10), rel_tol=1e-6)

    net = mlp(digits)
    p = get_flat_params(net)
    net.train()
    big = evaluate(net, p, digits.x_test, digits.y_test)
    small = evaluate(net, p, digits.x_test, digits.y_test, batch_size=7)
    assert big[0] == small[0] and math.isclose(big[1], small[1], rel_tol=1e-5)
    assert net.training  # mode restored


def test_failure_paths(digits: Dataset) -> None:
    model = mlp(digits)
    g = get_flat_params(model)
    x, y = digits.x_train[:20], digits.y_train[:20]
    ok = dict(epochs=1, batch_size=4, lr=0.1, generator=gen(0))
    assert optimizer_names() == ["adam", "sgd"]
    with pytest.raises(
        ConfigError, match="unknown optimizer 'rmsprop'; expected one of: adam, sgd"
    ):
        train_local(model, g, x, y, optimizer="rmsprop", **ok)  # type: ignore[arg-type]
    for key, bad in (("epochs", 0), ("batch_size", 0), ("lr", 0.0), ("lr", float("nan"))):
        with pytest.raises(ConfigError, match=key):
            train_local(model, g, x, y, **(ok | {key: bad}))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="momentum"):
        train_local(model, g, x, y, momentum=1.0, **ok)  # type: ignore[arg-type]
    with pytest.raises(DataError, match="same N"):
        train_local(model, g, x, y[:19], **ok)  # type: ignore[arg-type]
    with pytest.raises(DataError, match="int64"):
        train_local(model, g, x, y.int(), **ok)  # type: ignore[arg-type]
    with pytest.raises(DataError, match="no training samples"):
        train_local(model, g, x[:0], y[:0], **ok)  # type: ignore[arg-type]
    with pytest.raises(ModelError, match="must have shape"):
        train_local(model, g[:-1], x, y, **ok)  # type: ignore[arg-type]
    with pytest.raises(DataError, match="empty"):
        evaluate(model, g, x[:0], y[:0])


def test_fedavg_on_digits_reaches_093(digits: Dataset) -> None:
    """Acceptance: IID over 10 clients, MLP [64], 20 rounds of sample-weighted FedAvg."""
    parts = partition(digits.y_train, num_clients=10, scheme="iid", seed=0)
    model = mlp(digits)
    global_params = get_flat_params(model)
    g = gen(0)
    for _ in range(20):
        results = [
            train_local(
                model,
                global_params,
                digits.x_train[p],
                digits.y_train[p],
                epochs=2,
                batch_size=16,
                lr=0.2,
                generator=g,
            )
            for p in parts
        ]
        weights = torch.tensor([r.num_samples for r in results], dtype=torch.float64)
        deltas = torch.stack([r.delta for r in results]).to(torch.float64)
        global_params = global_params + ((weights / weights.sum()) @ deltas).to(torch.float32)
    acc, loss = evaluate(model, global_params, digits.x_test, digits.y_test)
    assert acc >= 0.93, (acc, loss)
    set_flat_params(model, global_params)  # the model is usable afterwards
