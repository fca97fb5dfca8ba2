"""Label flipping (data poisoning; e.g. Tolpegin et al., "Data Poisoning Attacks Against
Federated Learning Systems", ESORICS 2020; Fung et al. 2020 use 1 -> 7).

Modes: ``all_to_one`` (every label -> target), ``source_to_target`` (source -> target),
``random`` (each label -> a uniformly drawn *other* label), ``reverse`` (l -> C - 1 - l, the
label-flipping attack of Fang et al., "Local Model Poisoning Attacks to Byzantine-Robust
Federated Learning", USENIX Security 2020).  ``poison_fraction`` of the eligible samples are
flipped.

``boost`` scales the update trained on the flipped labels (explicit boosting, Bhagoji et al.,
"Analyzing Federated Learning through an Adversarial Lens", ICML 2019, who boost a
label-flipping objective the same way). Without it, 20 % flipping clients move FedAvg only a
few points (Tolpegin et al. make the same observation; benchmarks/robustness.md measures it).
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from fedledger.attacks.base import Attack, AttackContext, check_labels, choose, register_attack


@register_attack("label_flip")
class LabelFlip(Attack):
    poisons_data = True
    poisons_updates = True  # only when boost != 1
    mode: Literal["all_to_one", "source_to_target", "random", "reverse"] = "all_to_one"
    source_label: int = Field(1, ge=0)
    target_label: int = Field(0, ge=0)
    poison_fraction: float = Field(1.0, gt=0.0, le=1.0)
    boost: float = Field(
        1.0, gt=0.0, description="scale the trained update (explicit boosting, Bhagoji et al.)"
    )

    def poison_data(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        generator: torch.Generator,
        num_classes: int,
        input_shape: tuple[int, ...],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        check_labels(num_classes, self.source_label, self.target_label)
        if self.mode == "source_to_target":
            eligible = torch.nonzero(y == self.source_label).flatten()
        elif self.mode == "all_to_one":
            eligible = torch.nonzero(y != self.target_label).flatten()
        else:
            eligible = torch.arange(y.shape[0])
        picked = eligible[choose(eligible.numel(), self.poison_fraction, generator)]
        flipped = y.clone()
        if self.mode == "reverse":
            flipped[picked] = num_classes - 1 - y[picked]
        elif self.mode == "random":
            shift = torch.randint(1, max(num_classes, 2), (picked.numel(),), generator=generator)
            flipped[picked] = (y[picked] + shift) % num_classes
        else:
            flipped[picked] = self.target_label
        return x, flipped

    def poison_updates(
        self,
        malicious: torch.Tensor,
        benign: torch.Tensor,
        *,
        generator: torch.Generator,
        ctx: AttackContext,
    ) -> torch.Tensor:
        return malicious if self.boost == 1.0 else malicious * self.boost
