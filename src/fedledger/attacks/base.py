"""The adversary interface: what the engine calls, and when.

An attack is a small pydantic model whose fields are its parameters (unknown or ill-typed
parameters are a :class:`~fedledger.errors.ConfigError` at configuration time), registered by
name.  The engine drives it with three hooks::

    attack = create_attack(cfg.name, cfg.params)               # once, at configuration time
    malicious = select_malicious(num_clients, cfg, seed)         # once: sorted client ids

    # every round r >= cfg.start_round, for each malicious participant, before local training:
    if not attack.trains:          # free-rider: skip training, its update row is zeros
        ...
    elif attack.poisons_data:
        x, y = attack.poison_data(x, y, generator=g_client, num_classes=C, input_shape=shape)
        # x: (N, *input_shape) or (N, prod(input_shape)) float, y: (N,) int64; N may change
        # (``inject`` adds samples) -- report len(y) as the client's sample count

    # after every participant has trained, before privacy / compression / commitment:
    if attack.poisons_updates and malicious rows exist:
        U[mal_rows] = attack.poison_updates(
            U[mal_rows], U[benign_rows], generator=g_round,
            ctx=AttackContext(round=r, num_participants=n, previous_global_update=...),
        )
        # malicious: (m, d) float32, the attackers' own trained updates (zeros if not trained),
        # benign: (b, d) float32 (colluding attackers see the round's benign updates, as ALIE,
        # IPM and min-max/min-sum assume; b may be 0, then attacks fall back on their own rows)

Generators are ``torch.Generator`` objects the engine seeds from (run seed, round, client) so that
a run is reproducible.  Hooks are pure: they never modify their inputs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import torch
from pydantic import BaseModel, ConfigDict, ValidationError

from fedledger.attacks.registry import ATTACKS
from fedledger.errors import ConfigError


@dataclass(frozen=True)
class AttackContext:
    """What a model-poisoning attack may know about the round besides the updates.

    num_participants: clients that sent an update this round (n = m + b); 0 means m + b.
    global_params: the current global model as a flat vector.
    previous_global_update: last round's aggregated update (what a stale free-rider replays).
    """

    round: int = 0
    num_participants: int = 0
    global_params: torch.Tensor | None = None
    previous_global_update: torch.Tensor | None = None


class Attack(BaseModel):
    """Base class: fields are the attack's parameters; hooks default to "do nothing"."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: ClassVar[str] = ""
    poisons_data: ClassVar[bool] = False  # call poison_data before local training
    poisons_updates: ClassVar[bool] = False  # call poison_updates after training
    trains: ClassVar[bool] = True  # False: the client does not train at all (free-rider)

    def poison_data(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        generator: torch.Generator,
        num_classes: int,
        input_shape: tuple[int, ...],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return x, y

    def poison_updates(
        self,
        malicious: torch.Tensor,
        benign: torch.Tensor,
        *,
        generator: torch.Generator,
        ctx: AttackContext,
    ) -> torch.Tensor:
        return malicious


A = TypeVar("A", bound=type[Attack])


def register_attack(name: str) -> Callable[[A], A]:
    """Class decorator: register an :class:`Attack` subclass under ``name``."""

    def deco(cls: A) -> A:
        cls.name = name
        ATTACKS.register(name)(cls)
        return cls

    return deco


def create_attack(name: str, params: Mapping[str, Any] | None = None) -> Attack:
    """Build the attack ``name`` with ``params``; unknown names or parameters, wrong types and
    out-of-range values raise ConfigError."""
    if name not in ATTACKS:
        raise ConfigError(f"unknown attack {name!r}; expected one of: {', '.join(ATTACKS.names())}")
    cls = ATTACKS.get(name)
    try:
        return cls.model_validate(dict(params or {}))
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "(params)"
            if err["type"] == "extra_forbidden":
                accepted = ", ".join(sorted(cls.model_fields)) or "none"
                problems.append(f"unknown parameter {loc!r} (accepted: {accepted})")
            else:
                problems.append(f"{loc}: {err['msg']} (got {err.get('input')!r})")
        raise ConfigError(f"attack {name!r}: " + "; ".join(problems)) from None


def attack_names() -> list[str]:
    return ATTACKS.names()


def reference_updates(malicious: torch.Tensor, benign: torch.Tensor) -> torch.Tensor:
    """The updates colluding attackers estimate statistics from: the benign ones when they can
    see them, otherwise their own trained updates."""
    return benign if benign.shape[0] > 0 else malicious


def participants(malicious: torch.Tensor, benign: torch.Tensor, ctx: AttackContext) -> int:
    return ctx.num_participants or (malicious.shape[0] + benign.shape[0])


def choose(count: int, fraction: float, generator: torch.Generator) -> torch.Tensor:
    """Indices of round(fraction · count) items out of ``count``, drawn without replacement."""
    k = int(round(fraction * count))
    return torch.randperm(count, generator=generator)[:k]


def check_labels(num_classes: int, *labels: int | None) -> None:
    """Raise ConfigError when a configured label does not exist in the data set."""
    for label in labels:
        if label is not None and not 0 <= label < num_classes:
            raise ConfigError(
                f"label {label} is outside the data set's classes 0..{num_classes - 1}"
            )
