"""Free-riders (Lin, Du & Liu, "Free-riders in Federated Learning: Attacks and Defenses", 2019;
Fraboni, Vidal & Lorenzi, "Free-rider Attacks on Model Aggregation in Federated Learning",
AISTATS 2021): clients that do not train and send pseudo parameters instead.

Modes: ``zero`` (an all-zero update), ``stale`` (replay last round's global update, zeros in
the first round), ``noise`` (Gaussian noise rescaled to ``noise_scale`` × the median norm of the
round's benign updates, falling back on the norm of last round's global update).
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from fedledger.attacks.base import Attack, AttackContext, register_attack


def typical_norm(benign: torch.Tensor, ctx: AttackContext) -> float:
    if benign.shape[0] > 0:
        return float(torch.quantile(torch.linalg.vector_norm(benign.float(), dim=1), 0.5))
    if ctx.previous_global_update is not None:
        return float(torch.linalg.vector_norm(ctx.previous_global_update.float()))
    return 0.0


@register_attack("free_rider")
class FreeRider(Attack):
    poisons_updates = True
    trains = False

    mode: Literal["zero", "stale", "noise"] = "noise"
    noise_scale: float = Field(1.0, gt=0.0)

    def poison_updates(
        self,
        malicious: torch.Tensor,
        benign: torch.Tensor,
        *,
        generator: torch.Generator,
        ctx: AttackContext,
    ) -> torch.Tensor:
        m, d = malicious.shape
        if self.mode == "zero":
            return torch.zeros(m, d, dtype=torch.float32)
        if self.mode == "stale":
            prev = ctx.previous_global_update
            if prev is None:
                return torch.zeros(m, d, dtype=torch.float32)
            return prev.to(torch.float32).reshape(1, d).expand(m, d).clone()
        noise = torch.randn(m, d, generator=generator, dtype=torch.float32)
        norms = torch.linalg.vector_norm(noise, dim=1, keepdim=True).clamp_min(1e-12)
        return noise / norms * (self.noise_scale * typical_norm(benign, ctx))
