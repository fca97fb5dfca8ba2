"""Feature noise (data poisoning; noisy-feature attacks as in Fang et al., "Local Model
Poisoning Attacks to Byzantine-Robust Federated Learning", USENIX Security 2020 baselines):
add N(0, (std · σ_x)²) to the inputs of ``poison_fraction`` of the samples, σ_x being the
client's input standard deviation (so ``std`` is relative to the data's scale)."""

from __future__ import annotations

import torch
from pydantic import Field

from fedledger.attacks.base import Attack, choose, register_attack


@register_attack("feature_noise")
class FeatureNoise(Attack):
    poisons_data = True

    std: float = Field(1.0, ge=0.0)
    poison_fraction: float = Field(1.0, gt=0.0, le=1.0)

    def poison_data(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        generator: torch.Generator,
        num_classes: int,
        input_shape: tuple[int, ...],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        picked = choose(x.shape[0], self.poison_fraction, generator)
        scale = float(x.float().std()) if x.numel() > 1 else 1.0
        noisy = x.clone()
        noise = torch.randn(
            (picked.numel(), *x.shape[1:]), generator=generator, dtype=torch.float32
        )
        noisy[picked] = x[picked] + (noise * (self.std * scale)).to(x.dtype)
        return noisy, y
