"""Models: registry, shapes, deterministic init, flat parameter vectors, FLOP counts."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from torch.nn.utils import parameters_to_vector

from fedledger.errors import ConfigError, ModelError, RegistryError
from fedledger.models import (
    count_flops,
    create_model,
    get_flat_params,
    model_names,
    model_params,
    num_params,
    register_model,
    set_flat_params,
)

SHAPES = [(1, 8, 8), (1, 28, 28), (3, 16, 16)]


def test_names_and_params() -> None:
    assert model_names() == ["cnn", "logreg", "mlp"]
    assert model_params("mlp") == {"hidden": [64]}
    assert model_params("cnn") == {"channels": [16, 32], "kernel_size": 5, "hidden": 0}
    assert model_params("logreg") == {}


@pytest.mark.parametrize("name", ["logreg", "mlp", "cnn"])
@pytest.mark.parametrize("shape", SHAPES)
def test_output_shapes(name: str, shape: tuple[int, ...]) -> None:
    model = create_model(name, input_shape=shape, num_classes=7)
    out = model(torch.rand(5, *shape))
    assert out.shape == (5, 7) and out.dtype == torch.float32


@pytest.mark.parametrize("name", ["logreg", "mlp"])
def test_flat_features(name: str) -> None:
    model = create_model(name, input_shape=(13,), num_classes=3)
    assert model(torch.rand(4, 13)).shape == (4, 3)


def test_parameter_counts() -> None:
    assert num_params(create_model("logreg", input_shape=(1, 8, 8), num_classes=10)) == 650
    mlp = create_model("mlp", input_shape=(1, 8, 8), num_classes=10, hidden=[32, 16])
    assert num_params(mlp) == (64 * 32 + 32) + (32 * 16 + 16) + (16 * 10 + 10)
    cnn = create_model("cnn", input_shape=(1, 28, 28), num_classes=10)
    assert num_params(cnn) == (16 * 25 + 16) + (32 * 16 * 25 + 32) + (32 * 7 * 7 * 10 + 10)
    cnn_h = create_model("cnn", input_shape=(1, 8, 8), num_classes=10, hidden=20, channels=[4])
    assert num_params(cnn_h) == (4 * 25 + 4) + (4 * 4 * 4 * 20 + 20) + (20 * 10 + 10)


def test_cnn_rejects_unfit_inputs() -> None:
    with pytest.raises(ModelError, match=r"needs image inputs \(C, H, W\)"):
        create_model("cnn", input_shape=(64,), num_classes=10)
    with pytest.raises(ModelError, match="too small for 2 conv\\+pool stages"):
        create_model("cnn", input_shape=(1, 3, 3), num_classes=10)
    with pytest.raises(ConfigError, match="kernel_size must be odd"):
        create_model("cnn", input_shape=(1, 8, 8), num_classes=10, kernel_size=4)


def test_unknown_names_and_bad_params() -> None:
    with pytest.raises(
        ModelError, match="unknown model 'resnet'; expected one of: cnn, logreg, mlp"
    ):
        create_model("resnet", input_shape=(1, 8, 8), num_classes=10)
    with pytest.raises(
        ConfigError, match=r"unknown parameter\(s\) \['width'\]; it accepts: hidden"
    ):
        create_model("mlp", input_shape=(1, 8, 8), num_classes=10, width=3)
    with pytest.raises(ConfigError, match="it accepts: none"):
        create_model("logreg", input_shape=(1, 8, 8), num_classes=10, hidden=[3])
    with pytest.raises(ConfigError, match=r"hidden\[1\] must be an integer >= 1"):
        create_model("mlp", input_shape=(1, 8, 8), num_classes=10, hidden=[8, 0])
    with pytest.raises(ConfigError, match="hidden must be a list"):
        create_model("mlp", input_shape=(1, 8, 8), num_classes=10, hidden=64)
    with pytest.raises(ModelError, match="num_classes"):
        create_model("mlp", input_shape=(1, 8, 8), num_classes=1)
    with pytest.raises(ModelError, match="input_shape"):
        create_model("mlp", input_shape=(0, 8), num_classes=3)


def test_duplicate_registration_refused() -> None:
    @dataclass
    class Cfg:
        pass

    with pytest.raises(RegistryError, match="already registered"):
        register_model("mlp", config=Cfg)(torch.nn.Module)


@pytest.mark.parametrize("name", ["logreg", "mlp", "cnn"])
def test_init_is_deterministic_under_manual_seed(name: str) -> None:
    torch.manual_seed(42)
    a = get_flat_params(create_model(name, input_shape=(1, 8, 8), num_classes=10))
    torch.manual_seed(42)
    b = get_flat_params(create_model(name, input_shape=(1, 8, 8), num_classes=10))
    torch.manual_seed(43)
    c = get_flat_params(create_model(name, input_shape=(1, 8, 8), num_classes=10))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_flat_params_round_trip() -> None:
    model = create_model("cnn", input_shape=(1, 8, 8), num_classes=10)
    flat = get_flat_params(model)
    assert flat.shape == (num_params(model),) and flat.dtype == torch.float32
    assert torch.equal(flat, parameters_to_vector(model.parameters()))
    flat.add_(1.0)  # a copy: the model is untouched
    assert not torch.equal(flat, get_flat_params(model))

    ids = [id(p) for p in model.parameters()]
    ptrs = [p.data_ptr() for p in model.parameters()]
    new = torch.arange(num_params(model), dtype=torch.float32)
    set_flat_params(model, new)
    assert torch.equal(get_flat_params(model), new)
    # copied in place: same Parameter objects and storage, no aliasing of ``new``
    assert ids == [id(p) for p in model.parameters()]
    assert ptrs == [p.data_ptr() for p in model.parameters()]
    new.zero_()
    assert get_flat_params(model)[1] == 1.0
    first = next(model.parameters())
    assert first.requires_grad and first.flatten()[:3].tolist() == [0.0, 1.0, 2.0]


def test_set_flat_params_rejects_wrong_size() -> None:
    model = create_model("logreg", input_shape=(1, 8, 8), num_classes=10)
    with pytest.raises(ModelError, match=r"must have shape \(650,\) for this model, got \(649,\)"):
        set_flat_params(model, torch.zeros(649))
    with pytest.raises(ModelError, match=r"got \(650, 1\)"):
        set_flat_params(model, torch.zeros(650, 1))
    with pytest.raises(ModelError, match="floating point"):
        set_flat_params(model, torch.zeros(650, dtype=torch.int64))


def test_count_flops_known_answers() -> None:
    logreg = create_model("logreg", input_shape=(1, 8, 8), num_classes=10)
    assert count_flops(logreg, (1, 8, 8)) == 2 * 64 * 10
    mlp = create_model("mlp", input_shape=(1, 28, 28), num_classes=10, hidden=[64])
    assert count_flops(mlp, (1, 28, 28)) == 2 * (784 * 64 + 64 * 10)
    cnn = create_model("cnn", input_shape=(1, 28, 28), num_classes=10)
    conv1 = 2 * (16 * 28 * 28) * (1 * 25)
    conv2 = 2 * (32 * 14 * 14) * (16 * 25)
    fc = 2 * (32 * 7 * 7) * 10
    assert count_flops(cnn, (1, 28, 28)) == conv1 + conv2 + fc
    # hooks are removed afterwards: a second count is the same
    assert count_flops(cnn, (1, 28, 28)) == conv1 + conv2 + fc
    with pytest.raises(ModelError, match="does not accept inputs"):
        count_flops(logreg, (1, 9, 9))
