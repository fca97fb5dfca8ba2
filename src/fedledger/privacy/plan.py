"""A run's privacy plan, shared by the engine (which applies it) and the audit (which re-makes
it from config.toml): the noise multiplier (given, or calibrated to ``target_epsilon``), ε
after every planned round, the pre-round budget check, and the noised aggregate of a round.

Everything derives from the recorded configuration and the run seed, so a resumed run (and
the audit) re-creates it without any checkpointed state: the noise of round r comes from
(seed, r), ε from the config.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from fedledger.errors import ConfigError
from fedledger.privacy.accountant import Sampling, calibrate, epsilons, is_approximation
from fedledger.privacy.mechanism import noised_mean

if TYPE_CHECKING:
    from fedledger.config import ExperimentConfig
    from fedledger.protocol.decide import RoundDecision


@dataclass(frozen=True)
class PrivacyPlan:
    clip_norm: float
    noise_multiplier: float
    calibrated: bool  # z came from target_epsilon
    delta: float
    accountant: str  # as configured: rdp, pld or best
    sampling: Sampling
    max_epsilon: float | None
    seed: int
    planned_rounds: int
    epsilons: tuple[float, ...]  # ε after rounds 1..planned_rounds

    @classmethod
    def from_config(cls, cfg: ExperimentConfig) -> PrivacyPlan:
        p = cfg.privacy
        assert p is not None
        f = cfg.federation
        sampling = Sampling(population=f.num_clients, size=f.per_round, kind="fixed")
        z = p.noise_multiplier
        if z is None:
            assert p.target_epsilon is not None
            z = calibrate(
                p.target_epsilon,
                delta=p.delta,
                rounds=f.rounds,
                sampling=sampling,
                accountant=p.accountant,
            )
        eps = epsilons(z, sampling=sampling, rounds=f.rounds, delta=p.delta, accountant=p.accountant)
        if p.max_epsilon is not None and eps[0] > p.max_epsilon:
            raise ConfigError(
                f"privacy.max_epsilon = {p.max_epsilon:g} is below the epsilon of a single round "
                f"({eps[0]:.4g} at delta {p.delta:g}, noise multiplier {z:.4g}): no round could "
                "run; raise max_epsilon or the noise"
            )
        return cls(
            clip_norm=p.clip_norm,
            noise_multiplier=z,
            calibrated=p.noise_multiplier is None,
            delta=p.delta,
            accountant=p.accountant,
            sampling=sampling,
            max_epsilon=p.max_epsilon,
            seed=cfg.seed,
            planned_rounds=f.rounds,
            epsilons=tuple(eps),
        )

    @property
    def rounds(self) -> int:
        """How many rounds run: the planned ones up to the first that would exceed
        ``max_epsilon``."""
        return next((r for r in range(self.planned_rounds) if not self.allows(r)), self.planned_rounds)

    def allows(self, rnd: int) -> bool:
        """The pre-round check: round ``rnd`` (0-based) keeps ε within ``max_epsilon``."""
        return self.max_epsilon is None or self.epsilons[rnd] <= self.max_epsilon

    def stop_reason(self) -> str | None:
        """Why the run stops before its planned rounds, or None."""
        r = self.rounds
        if r == self.planned_rounds:
            return None
        return (
            f"round {r} would bring epsilon to {self.epsilons[r]:.4g} (delta {self.delta:g}), "
            f"above privacy.max_epsilon = {self.max_epsilon:g}: the run stopped after "
            f"{r} of {self.planned_rounds} rounds"
        )

    def epsilon_after(self, rnd: int) -> float:
        return self.epsilons[rnd]

    def aggregate(self, updates: Sequence[torch.Tensor], *, rnd: int, dim: int) -> torch.Tensor:
        """Round ``rnd``'s noised mean of the used updates (:func:`noised_mean`)."""
        return noised_mean(
            updates,
            dim=dim,
            clip_norm=self.clip_norm,
            noise_multiplier=self.noise_multiplier,
            denominator=self.sampling.size,
            seed=self.seed,
            round=rnd,
        )

    def apply(
        self, decision: RoundDecision, updates: Sequence[torch.Tensor], *, rnd: int, dim: int
    ) -> None:
        """Replace the rule's aggregate with the noised mean of ``updates`` (the used ones,
        in on-chain order); also when none was used."""
        decision.aggregate = self.aggregate(updates, rnd=rnd, dim=dim)

    def summary(self) -> dict[str, Any]:
        """summary.json's ``privacy`` table."""
        done = self.rounds
        eps = self.epsilons[done - 1] if done else 0.0
        return {
            "epsilon": eps if math.isfinite(eps) else None,
            "delta": self.delta,
            "noise_multiplier": self.noise_multiplier,
            "calibrated": self.calibrated,
            "clip_norm": self.clip_norm,
            "accountant": self.accountant,
            "approximation": is_approximation(self.sampling, self.accountant),  # type: ignore[arg-type]
            "sampling": f"fixed {self.sampling.size} of {self.sampling.population} per round",
            "max_epsilon": self.max_epsilon,
            "rounds": done,
            "stopped": self.stop_reason(),
        }


def privacy_plan(cfg: ExperimentConfig) -> PrivacyPlan | None:
    """The run's plan, or None without a [privacy] section."""
    return PrivacyPlan.from_config(cfg) if cfg.privacy is not None else None
