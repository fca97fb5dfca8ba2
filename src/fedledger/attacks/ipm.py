"""Inner-product manipulation (Xie, Koyejo & Gupta, "Fall of Empires: Breaking Byzantine-
tolerant SGD by Inner Product Manipulation", UAI 2019): every attacker sends −ε · mean of the
benign updates, making the aggregate's inner product with the true update negative."""

from __future__ import annotations

import torch
from pydantic import Field

from fedledger.attacks.base import Attack, AttackContext, reference_updates, register_attack


@register_attack("ipm")
class Ipm(Attack):
    poisons_updates = True

    epsilon: float = Field(0.5, gt=0.0)

    def poison_updates(
        self,
        malicious: torch.Tensor,
        benign: torch.Tensor,
        *,
        generator: torch.Generator,
        ctx: AttackContext,
    ) -> torch.Tensor:
        ref = reference_updates(malicious, benign).to(torch.float64)
        mal = (-self.epsilon * ref.mean(dim=0)).to(torch.float32)
        return mal.expand(malicious.shape[0], -1).clone()
