"""Sybils (Douceur, "The Sybil Attack", IPTPS 2002; in FL: Fung et al., "The Limitations of
Federated Learning in Sybil Settings", RAID 2020): one attacker behind many identities.

Each identity trains on its own data, label-flipped all-to-one towards ``target_label`` when
``flip_labels`` (the shared poisoning objective); the attacker then averages its identities'
updates into one (boosted by ``scale``) and every identity sends it plus a small independent
jitter of relative size ``jitter`` — coordinated, near-identical updates.
"""

from __future__ import annotations

import torch
from pydantic import Field

from fedledger.attacks.base import Attack, AttackContext, check_labels, register_attack


@register_attack("sybil")
class Sybil(Attack):
    poisons_data = True
    poisons_updates = True

    flip_labels: bool = True
    target_label: int = Field(0, ge=0)
    scale: float = Field(1.0, gt=0.0)
    jitter: float = Field(0.01, ge=0.0)

    def poison_data(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        generator: torch.Generator,
        num_classes: int,
        input_shape: tuple[int, ...],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.flip_labels:
            return x, y
        check_labels(num_classes, self.target_label)
        return x, torch.full_like(y, self.target_label)

    def poison_updates(
        self,
        malicious: torch.Tensor,
        benign: torch.Tensor,
        *,
        generator: torch.Generator,
        ctx: AttackContext,
    ) -> torch.Tensor:
        m, d = malicious.shape
        base = malicious.to(torch.float64).mean(dim=0).to(torch.float32) * self.scale
        rms = float(torch.linalg.vector_norm(base)) / max(d, 1) ** 0.5
        noise = torch.randn(m, d, generator=generator, dtype=torch.float32)
        return base.expand(m, d) + noise * (self.jitter * rms)
