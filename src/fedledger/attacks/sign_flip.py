"""Sign flipping (e.g. Damaskinos et al., "Asynchronous Byzantine Machine Learning", ICML 2018;
Li et al., "RSA", AAAI 2019): each attacker sends −k · u for its honest update u."""

from __future__ import annotations

import torch
from pydantic import Field

from fedledger.attacks.base import Attack, AttackContext, register_attack


@register_attack("sign_flip")
class SignFlip(Attack):
    poisons_updates = True

    scale: float = Field(1.0, gt=0.0)

    def poison_updates(
        self,
        malicious: torch.Tensor,
        benign: torch.Tensor,
        *,
        generator: torch.Generator,
        ctx: AttackContext,
    ) -> torch.Tensor:
        return malicious * (-self.scale)
