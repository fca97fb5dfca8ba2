"""Min-Max (Shejwalkar & Houmansadr, NDSS 2021): every attacker sends μ − γ·δ with the
largest γ such that its largest distance to a benign update is at most the largest
distance between two benign updates.  See :mod:`fedledger.attacks._agr_agnostic`."""

from __future__ import annotations

from typing import ClassVar, Literal

import torch

from fedledger.attacks._agr_agnostic import Perturbation, agr_agnostic_update
from fedledger.attacks.base import Attack, AttackContext, reference_updates, register_attack


@register_attack("min_max")
class MinMax(Attack):
    poisons_updates = True
    objective: ClassVar[Literal["max", "sum"]] = "max"

    perturbation: Perturbation = "std"

    def poison_updates(
        self,
        malicious: torch.Tensor,
        benign: torch.Tensor,
        *,
        generator: torch.Generator,
        ctx: AttackContext,
    ) -> torch.Tensor:
        ref = reference_updates(malicious, benign)
        mal = agr_agnostic_update(ref, self.perturbation, self.objective)
        return mal.expand(malicious.shape[0], -1).clone()
