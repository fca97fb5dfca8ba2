"""Server-side optimisers: the round's aggregate Δ (what the robust rule returns) is a
pseudo-gradient, and the server takes one optimiser step with it instead of x ← x + Δ.

* ``sgd``: x ← x + η·Δ. With η = 1 this is FedAvg's own step, bit for bit (the default when a
  run has no [server] section).
* ``momentum`` (FedAvgM; Hsu, Qi, Brown, "Measuring the Effects of Non-Identical Data
  Distribution for Federated Visual Classification", 2019): m ← β·m + Δ; x ← x + η·m.
* ``fedadagrad``, ``fedyogi``, ``fedadam`` (Reddi, Charles, Zaheer, Garrett, Rush, Konečný,
  Kumar, McMahan, "Adaptive Federated Optimization", ICLR 2021, Algorithm 2), from
  m₋₁ = 0 and v₋₁ = τ² (the algorithm asks for v₋₁ ≥ τ²):

      m ← β1·m + (1 − β1)·Δ
      v ← v + Δ²                                  (FedAdagrad)
      v ← v − (1 − β2)·Δ²·sign(v − Δ²)            (FedYogi)
      v ← β2·v + (1 − β2)·Δ²                      (FedAdam)
      x ← x + η·m / (√v + τ)

  As in Algorithm 2 there is no bias correction (Flower's FedAdam adds Adam's; its v starts
  at 0).

The steps are pure functions of tensors (inputs left unmodified); :class:`ServerOptimizer`
holds the state across rounds, with ``state_dict()`` / ``load_state_dict()`` for a resumed
run. The engine and the audit both build it with :func:`create_server_optimizer` from the
run's [server] section and step it once per round that has an aggregate, in float32 on the
CPU, so the audit re-makes every global model bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from fedledger.config import ServerConfig
from fedledger.errors import ConfigError

Tensor = torch.Tensor


def sgd_step(x: Tensor, delta: Tensor, *, lr: float) -> Tensor:
    """x + η·Δ (exactly x + Δ when η = 1)."""
    return x + delta if lr == 1.0 else x + lr * delta


def momentum_step(
    x: Tensor, delta: Tensor, m: Tensor, *, lr: float, momentum: float
) -> tuple[Tensor, Tensor]:
    """FedAvgM: (x + η·m', m') with m' = β·m + Δ."""
    m_new = momentum * m + delta
    return x + lr * m_new, m_new


def adagrad_moment(v: Tensor, delta: Tensor, *, beta2: float) -> Tensor:
    """FedAdagrad's v + Δ² (``beta2`` unused)."""
    return v + delta * delta


def yogi_moment(v: Tensor, delta: Tensor, *, beta2: float) -> Tensor:
    """FedYogi's v − (1 − β2)·Δ²·sign(v − Δ²)."""
    d2 = delta * delta
    return v - (1 - beta2) * d2 * torch.sign(v - d2)


def adam_moment(v: Tensor, delta: Tensor, *, beta2: float) -> Tensor:
    """FedAdam's β2·v + (1 − β2)·Δ²."""
    return beta2 * v + (1 - beta2) * (delta * delta)


SecondMoment = Callable[..., Tensor]


def adaptive_step(
    x: Tensor,
    delta: Tensor,
    m: Tensor,
    v: Tensor,
    *,
    second_moment: SecondMoment,
    lr: float,
    beta1: float,
    beta2: float,
    tau: float,
) -> tuple[Tensor, Tensor, Tensor]:
    """One step of Reddi et al.'s Algorithm 2: (x', m', v')."""
    m_new = beta1 * m + (1 - beta1) * delta
    v_new = second_moment(v, delta, beta2=beta2)
    return x + lr * m_new / (torch.sqrt(v_new) + tau), m_new, v_new


@dataclass(frozen=True)
class _Spec:
    defaults: dict[str, float]  # every hyper-parameter it takes, with its default
    moment: SecondMoment | None = None  # the adaptive ones' second-moment update


# defaults: docs/strategies.md gives each one's source
_ADAPTIVE = {"lr": 1e-2, "beta1": 0.9, "beta2": 0.99, "tau": 1e-3}
SPECS: dict[str, _Spec] = {
    "sgd": _Spec({"lr": 1.0}),
    "momentum": _Spec({"lr": 1.0, "momentum": 0.9}),
    "fedadagrad": _Spec({k: v for k, v in _ADAPTIVE.items() if k != "beta2"}, adagrad_moment),
    "fedyogi": _Spec(dict(_ADAPTIVE), yogi_moment),
    "fedadam": _Spec(dict(_ADAPTIVE), adam_moment),
}


def server_optimizer_names() -> list[str]:
    return sorted(SPECS)


class ServerOptimizer:
    """One server optimiser and its state (m, v) across rounds.

    Parameters
    ----------
    name : one of :func:`server_optimizer_names`
    dim : the model's parameter count
    hyper : its hyper-parameters (all of the ones it takes; see :func:`create_server_optimizer`)
    """

    def __init__(self, name: str, *, dim: int, hyper: dict[str, float]) -> None:
        if name not in SPECS:
            raise ConfigError(
                f"unknown server optimizer {name!r}; expected one of: "
                f"{', '.join(server_optimizer_names())}"
            )
        spec = SPECS[name]
        if set(hyper) != set(spec.defaults):
            raise ConfigError(
                f"server optimizer {name!r} takes {sorted(spec.defaults)}, got {sorted(hyper)}"
            )
        self.name = name
        self.dim = dim
        self.hyper = dict(hyper)
        self._spec = spec
        self.steps = 0
        self.m: Tensor | None = None
        self.v: Tensor | None = None
        if name != "sgd":
            self.m = torch.zeros(dim, dtype=torch.float32)
        if spec.moment is not None:
            self.v = torch.full((dim,), hyper["tau"] ** 2, dtype=torch.float32)

    def step(self, params: Tensor, delta: Tensor) -> Tensor:
        """The next global model from ``params`` and the round's aggregate ``delta``."""
        h = self.hyper
        self.steps += 1
        if self.name == "sgd":
            return sgd_step(params, delta, lr=h["lr"])
        assert self.m is not None
        if self.name == "momentum":
            new, self.m = momentum_step(params, delta, self.m, lr=h["lr"], momentum=h["momentum"])
            return new
        assert self.v is not None and self._spec.moment is not None
        new, self.m, self.v = adaptive_step(
            params,
            delta,
            self.m,
            self.v,
            second_moment=self._spec.moment,
            lr=h["lr"],
            beta1=h["beta1"],
            beta2=h.get("beta2", 0.0),
            tau=h["tau"],
        )
        return new

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs to take the next step as this one would."""
        return {
            "name": self.name,
            "hyper": dict(self.hyper),
            "steps": self.steps,
            "m": None if self.m is None else self.m.clone(),
            "v": None if self.v is None else self.v.clone(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Take ``state`` (from :meth:`state_dict` of the same optimiser and model size);
        a ConfigError if it is another optimiser's or another size's."""
        if state.get("name") != self.name or state.get("hyper") != self.hyper:
            raise ConfigError(
                f"server optimizer state is for {state.get('name')!r} {state.get('hyper')}, "
                f"not this run's {self.name!r} {self.hyper}"
            )
        for key in ("m", "v"):
            mine, theirs = getattr(self, key), state.get(key)
            if (mine is None) != (theirs is None) or (
                isinstance(theirs, Tensor) and tuple(theirs.shape) != (self.dim,)
            ):
                raise ConfigError(f"server optimizer state {key!r} does not fit ({self.dim},)")
        self.steps = int(state["steps"])
        self.m = None if state["m"] is None else state["m"].to(torch.float32).clone()
        self.v = None if state["v"] is None else state["v"].to(torch.float32).clone()


def create_server_optimizer(cfg: ServerConfig | None, *, dim: int) -> ServerOptimizer:
    """The run's server optimiser: [server]'s keys over the optimiser's defaults; no [server]
    section is ``sgd`` with η = 1 (x ← x + Δ). A key the optimiser does not take is a
    ConfigError naming it."""
    if cfg is None:
        return ServerOptimizer("sgd", dim=dim, hyper=dict(SPECS["sgd"].defaults))
    spec = SPECS.get(cfg.optimizer)
    if spec is None:
        raise ConfigError(
            f"server.optimizer {cfg.optimizer!r} is unknown; expected one of: "
            f"{', '.join(server_optimizer_names())}"
        )
    given = {k: v for k, v in cfg.model_dump(exclude={"optimizer"}).items() if v is not None}
    extra = sorted(set(given) - set(spec.defaults))
    if extra:
        raise ConfigError(
            f"server.{extra[0]} does not apply to server.optimizer = {cfg.optimizer!r}, which "
            f"takes {', '.join(sorted(spec.defaults))}; remove it"
        )
    return ServerOptimizer(cfg.optimizer, dim=dim, hyper={**spec.defaults, **given})
