"""Gaussian noise (Blanchard et al., NeurIPS 2017 "Gaussian Byzantine workers"; Fang et al.
2020): replace each attacker's update by N(0, std²) noise, or add the noise to it."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from fedledger.attacks.base import Attack, AttackContext, register_attack


@register_attack("gaussian")
class Gaussian(Attack):
    poisons_updates = True

    std: float = Field(1.0, gt=0.0)
    mode: Literal["replace", "add"] = "replace"

    def poison_updates(
        self,
        malicious: torch.Tensor,
        benign: torch.Tensor,
        *,
        generator: torch.Generator,
        ctx: AttackContext,
    ) -> torch.Tensor:
        noise = torch.randn(malicious.shape, generator=generator, dtype=torch.float32) * self.std
        return noise if self.mode == "replace" else malicious + noise
