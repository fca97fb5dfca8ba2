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
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from fedledger.attacks.registry import ATTACKS
from fedledger.errors import ConfigError

if TYPE_CHECKING:
    from fedledger.attacks.base import Attack

# False inside attack_params_deferred(): the parameters are checked by build() afterwards
_CHECK_PARAMS: ContextVar[bool] = ContextVar("check_attack_params", default=True)


@contextmanager
def attack_params_deferred() -> Iterator[None]:
    """Within it, an :class:`AttackConfig` checks everything but its attack's parameters, which
    takes the attack's class (and torch): the caller checks them with ``build()`` afterwards,
    once everything that is cheap to check has passed."""
    token = _CHECK_PARAMS.set(False)
    try:
        yield
    finally:
        _CHECK_PARAMS.reset(token)


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
            raise _describe(exc) from None

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> AttackConfig:
        """Validate a parsed ``[attack]`` table; every problem is a ConfigError."""
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            raise _describe(exc) from None

    @model_validator(mode="after")
    def _check(self) -> AttackConfig:
        if (self.fraction is None) == (self.clients is None):
            raise ValueError("set exactly one of attack.fraction or attack.clients")
        if self.clients is not None:
            if any(c < 0 for c in self.clients):
                raise ValueError(f"attack.clients must be client ids >= 0, got {self.clients}")
            if len(set(self.clients)) != len(self.clients):
                raise ValueError(f"attack.clients has duplicates: {self.clients}")
        if self.name not in ATTACKS:
            known = ", ".join(ATTACKS.names())
            problem = f"unknown attack {self.name!r}; expected one of: {known}"
            raise ConfigError(problem, problems=[("attack.name", problem)])
        if _CHECK_PARAMS.get():
            self.build()  # unknown parameter -> ConfigError (a ValueError) right here
        return self

    def build(self) -> Attack:
        """The configured attack object."""
        from fedledger.attacks.base import create_attack

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
    import numpy as np

    m = num_malicious(num_clients, cfg.fraction or 0.0)
    rng = np.random.default_rng([seed, 0xA77AC])
    return sorted(int(i) for i in rng.choice(num_clients, size=m, replace=False))


def _describe(exc: ValidationError) -> ConfigError:
    """One ConfigError for the section, with a (key, what is wrong) problem per bad key."""
    problems: list[tuple[str, str]] = []
    for err in exc.errors():
        key = ".".join(["attack", *(str(p) for p in err["loc"])])
        cause = err.get("ctx", {}).get("error")
        if isinstance(cause, ConfigError) and cause.problems:
            problems += cause.problems
        elif err["type"] == "extra_forbidden":
            problems.append((key, "unknown key; attack parameters go under attack.params"))
        else:
            msg = str(err["msg"]).removeprefix("Value error, ")
            got = err.get("input")
            shown = f" (got {got!r})" if err["loc"] and not isinstance(got, dict) else ""
            problems.append((key, msg + shown))
    lines = ["invalid [attack] section:", *(f"  {k}: {m}" for k, m in problems)]
    return ConfigError("\n".join(lines), problems=problems)
