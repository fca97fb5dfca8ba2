"""Scaling / boosting (Bhagoji et al., "Analyzing Federated Learning through an Adversarial
Lens", ICML 2019): each attacker multiplies its update by ``factor``."""

from __future__ import annotations

import torch
from pydantic import Field

from fedledger.attacks.base import Attack, AttackContext, register_attack


@register_attack("scaling")
class Scaling(Attack):
    poisons_updates = True

    factor: float = Field(10.0, gt=0.0)

    def poison_updates(
        self,
        malicious: torch.Tensor,
        benign: torch.Tensor,
        *,
        generator: torch.Generator,
        ctx: AttackContext,
    ) -> torch.Tensor:
        return malicious * self.factor
