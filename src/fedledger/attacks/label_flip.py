"""Label flipping (data poisoning; e.g. Tolpegin et al., "Data Poisoning Attacks Against
Federated Learning Systems", ESORICS 2020; Fung et al. 2020 use 1 -> 7).

Modes: ``all_to_one`` (every label -> target), ``source_to_target`` (source -> target),
``random`` (each label -> a uniformly drawn *other* label).  ``poison_fraction`` of the
eligible samples are flipped.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from fedledger.attacks.base import Attack, check_labels, register_attack


def choose(count: int, fraction: float, generator: torch.Generator) -> torch.Tensor:
    """Indices of round(fraction · count) items out of ``count``, drawn without replacement."""
    k = int(round(fraction * count))
    return torch.randperm(count, generator=generator)[:k]


@register_attack("label_flip")
class LabelFlip(Attack):
    poisons_data = True

    mode: Literal["all_to_one", "source_to_target", "random"] = "all_to_one"
    source_label: int = Field(1, ge=0)
    target_label: int = Field(0, ge=0)
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
        check_labels(num_classes, self.source_label, self.target_label)
        if self.mode == "source_to_target":
            eligible = torch.nonzero(y == self.source_label).flatten()
        elif self.mode == "all_to_one":
            eligible = torch.nonzero(y != self.target_label).flatten()
        else:
            eligible = torch.arange(y.shape[0])
        picked = eligible[choose(eligible.numel(), self.poison_fraction, generator)]
        flipped = y.clone()
        if self.mode == "random":
            shift = torch.randint(1, max(num_classes, 2), (picked.numel(),), generator=generator)
            flipped[picked] = (y[picked] + shift) % num_classes
        else:
            flipped[picked] = self.target_label
        return x, flipped
