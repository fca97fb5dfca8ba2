"""Multinomial logistic regression: flatten -> Linear. The convex baseline."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from fedledger.models.registry import register_model


@dataclass
class LogRegConfig:
    """No parameters."""


@register_model("logreg", config=LogRegConfig)
class LogReg(nn.Module):
    def __init__(
        self, config: LogRegConfig, *, input_shape: tuple[int, ...], num_classes: int
    ) -> None:
        super().__init__()
        self.config = config
        self.linear = nn.Linear(math.prod(input_shape), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, *input_shape) -> logits (B, num_classes)
        return self.linear(x.flatten(1))  # (B, F) -> (B, K)
