"""Client training loops by name (``federation.trainer``): the built-in ``"default"`` is
:func:`~fedledger.client.training.train_local` (mini-batch SGD or Adam, FedProx's proximal
term); a plugin registers its own with :func:`register_trainer` (docs/extending.md).

A training loop is ``fn(model, global_params, x, y, *, params, **settings) -> LocalResult``:
``settings`` are ``train_local``'s keyword arguments as the run's [federation] section gives
them (epochs, batch_size, lr, generator, optimizer, momentum, weight_decay, proximal_mu), and
``params`` the loop's own table (``federation.trainer_params``). It must be deterministic given
``generator``: the audit re-trains with it where the protocol needs a re-made update.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from fedledger.client.training import LocalResult, train_local
from fedledger.errors import ConfigError
from fedledger.registry import Registry

Trainer = Callable[..., LocalResult]
TRAINERS: Registry[Trainer] = Registry("training loop")


def register_trainer(name: str) -> Callable[[Trainer], Trainer]:
    """Decorator: register a client training loop under ``name``."""
    return TRAINERS.register(name)


@register_trainer("default")
def default_trainer(
    model: torch.nn.Module,
    global_params: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    params: Mapping[str, Any],
    **settings: Any,
) -> LocalResult:
    if params:
        raise ConfigError(
            f"the default training loop takes no federation.trainer_params, got {dict(params)!r}"
        )
    return train_local(model, global_params, x, y, **settings)


def trainer_names() -> list[str]:
    return TRAINERS.names()
