"""Injected mislabelled samples (data poisoning; "dirty-label" injection, e.g. Tolpegin et al.
2020, Fang et al. 2020): append ``ratio`` · N copies of the client's own inputs, drawn with
replacement, carrying a wrong label (``target_label``, or a random other label)."""

from __future__ import annotations

import torch
from pydantic import Field

from fedledger.attacks.base import Attack, check_labels, register_attack


@register_attack("inject")
class Inject(Attack):
    poisons_data = True

    ratio: float = Field(1.0, gt=0.0)
    target_label: int | None = Field(None, ge=0)

    def poison_data(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        generator: torch.Generator,
        num_classes: int,
        input_shape: tuple[int, ...],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        check_labels(num_classes, self.target_label)
        if y.shape[0] == 0:
            return x, y
        count = max(1, int(round(self.ratio * y.shape[0])))
        src = torch.randint(0, y.shape[0], (count,), generator=generator)
        if self.target_label is not None:
            wrong = torch.full((count,), self.target_label, dtype=y.dtype)
            # a copy of a target-class sample would be correctly labelled: re-label it
            same = y[src] == self.target_label
            wrong[same] = (self.target_label + 1) % max(num_classes, 2)
        else:
            shift = torch.randint(1, max(num_classes, 2), (count,), generator=generator)
            wrong = (y[src] + shift) % num_classes
        return torch.cat([x, x[src]]), torch.cat([y, wrong.to(y.dtype)])
