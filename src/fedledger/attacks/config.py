"""The ``[attack]`` configuration section and the seeded choice of malicious clients.

TOML::

    [attack]
    name = "alie"          # a registered attack (fedledger.attacks.attack_names())
    fraction = 0.2         # share of all clients that are malicious ... or:
    # clients = [3, 7, 11] # explicit client ids
    start_round = 0        # rounds before this one are clean
    params = { z = 1.0 }   # the attack's parameters; unknown ones are a ConfigError
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from fedledger.attacks.base import Attack, create_attack
from fedledger.errors import ConfigError


class AttackConfig(BaseModel):
    """One adversary per run: which attack, which clients, from when, with which parameters.

    Constructing it directly raises ConfigError on any problem; nested inside a larger config
    (``model_validate``) the same checks surface as that model's ValidationError.
    """

    model_config = ConfigDict(extra="forbid")

    name: str
    fraction: float | None = Field(None, ge=0.0, le=1.0)
    clients: list[int] | None = None
    start_round: int = Field(0, ge=0)
    params: dict[str, Any] = Field(default_factory=dict)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise ConfigError(_describe(exc)) from None

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> AttackConfig:
        """Validate a parsed ``[attack]`` table; every problem is a ConfigError."""
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            raise ConfigError(_describe(exc)) from None

    @model_validator(mode="after")
    def _check(self) -> AttackConfig:
        if (self.fraction is None) == (self.clients is None):
            raise ValueError("set exactly one of attack.fraction or attack.clients")
        if self.clients is not None:
            if any(c < 0 for c in self.clients):
                raise ValueError(f"attack.clients must be client ids >= 0, got {self.clients}")
            if len(set(self.clients)) != len(self.clients):
                raise ValueError(f"attack.clients has duplicates: {self.clients}")
        self.build()  # unknown attack or parameter -> ConfigError (a ValueError) right here
        return self

    def build(self) -> Attack:
        """The configured attack object."""
        return create_attack(self.name, self.params)


def num_malicious(num_clients: int, fraction: float) -> int:
    """Nearest integer to fraction · num_clients (halves round up)."""
    return min(num_clients, math.floor(fraction * num_clients + 0.5 + 1e-9))


def select_malicious(num_clients: int, cfg: AttackConfig, seed: int) -> list[int]:
    """The malicious client ids, sorted: ``cfg.clients`` as given, or a seeded random choice of
    round(fraction · num_clients) clients (same seed, same choice)."""
    if num_clients < 0:
        raise ConfigError(f"num_clients must be >= 0, got {num_clients}")
    if cfg.clients is not None:
        bad = [c for c in cfg.clients if c >= num_clients]
        if bad:
            raise ConfigError(
                f"attack.clients {bad} do not exist: client ids run 0..{num_clients - 1}"
            )
        return sorted(cfg.clients)
    m = num_malicious(num_clients, cfg.fraction or 0.0)
    rng = np.random.default_rng([seed, 0xA77AC])
    return sorted(int(i) for i in rng.choice(num_clients, size=m, replace=False))


def _describe(exc: ValidationError) -> str:
    lines = ["invalid [attack] section:"]
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(attack)"
        if err["type"] == "extra_forbidden":
            lines.append(f"  unknown key attack.{loc}; attack parameters go under attack.params")
        else:
            msg = str(err["msg"]).removeprefix("Value error, ")
            lines.append(f"  {msg}" if loc == "(attack)" else f"  attack.{loc}: {msg}")
    return "\n".join(lines)
