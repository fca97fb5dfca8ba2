"""Models by name: each model file registers an ``nn.Module`` class and its dataclass config.

``create_model(name, input_shape=..., num_classes=..., **params)`` checks ``params`` against the
config's fields (unknown name -> ConfigError naming the accepted ones) and builds the module.

Initialisation draws from torch's global RNG: call ``torch.manual_seed(seed)`` right before
``create_model`` to get the same initial weights every time (the engine does).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

from fedledger.errors import ConfigError, ModelError, RegistryError
from fedledger.registry import Registry


@dataclass(frozen=True)
class ModelSpec:
    config: type  # a dataclass; its fields are the model's parameters
    factory: Callable[..., torch.nn.Module]  # (config, *, input_shape, num_classes)


MODELS: Registry[ModelSpec] = Registry("model")
M = TypeVar("M", bound=type[torch.nn.Module])


def register_model(name: str, *, config: type) -> Callable[[M], M]:
    """Class decorator: register an ``nn.Module`` whose ``__init__(config, *, input_shape,
    num_classes)`` builds the model; ``config`` is its parameters' dataclass."""
    if not dataclasses.is_dataclass(config):
        raise TypeError(f"config of model {name!r} must be a dataclass")

    def deco(cls: M) -> M:
        MODELS.register(name)(ModelSpec(config=config, factory=cls))
        return cls

    return deco


def model_names() -> list[str]:
    _ensure_builtin_models()
    return MODELS.names()


def model_params(name: str) -> dict[str, Any]:
    """The parameters model ``name`` accepts, with their defaults."""
    cfg = _spec(name).config()
    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}


def create_model(
    name: str, *, input_shape: tuple[int, ...], num_classes: int, **params: Any
) -> torch.nn.Module:
    """Build model ``name`` for inputs (N, *input_shape) and ``num_classes`` outputs (logits)."""
    spec = _spec(name)
    accepted = [f.name for f in dataclasses.fields(spec.config)]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ConfigError(
            f"model {name!r} got unknown parameter(s) {unknown}; it accepts: "
            f"{', '.join(accepted) if accepted else 'none'}"
        )
    shape = tuple(input_shape)
    if not shape or not all(isinstance(s, int) and s >= 1 for s in shape):
        raise ModelError(f"input_shape must be a tuple of positive ints, got {input_shape!r}")
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ModelError(f"num_classes must be an integer >= 2, got {num_classes!r}")
    try:
        config = spec.config(**params)
    except TypeError as exc:
        raise ConfigError(f"model {name!r}: {exc}") from None
    return spec.factory(config, input_shape=shape, num_classes=num_classes)


def _spec(name: str) -> ModelSpec:
    _ensure_builtin_models()
    try:
        return MODELS.get(name)
    except RegistryError:
        raise ModelError(
            f"unknown model {name!r}; expected one of: {', '.join(MODELS.names())}"
        ) from None


def _ensure_builtin_models() -> None:
    # importing the package registers every built-in model (one module per model)
    import fedledger.models  # noqa: F401


def check_int(model: str, name: str, value: object, minimum: int) -> int:
    """Config validation helper: an int >= minimum, else ConfigError."""
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"model {model!r}: {name} must be an integer >= {minimum}, got {value!r}")
    return value


def check_int_list(model: str, name: str, value: object, minimum: int) -> list[int]:
    """Config validation helper: a list/tuple of ints >= minimum, else ConfigError."""
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"model {model!r}: {name} must be a list of integers, got {value!r}")
    return [check_int(model, f"{name}[{i}]", v, minimum) for i, v in enumerate(value)]
