"""Multi-layer perceptron: flatten -> [Linear -> ReLU] x len(hidden) -> Linear."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from fedledger.models.registry import check_int_list, register_model


@dataclass
class MLPConfig:
    hidden: list[int] = field(default_factory=lambda: [64])  # widths of the hidden layers

    def __post_init__(self) -> None:
        self.hidden = check_int_list("mlp", "hidden", self.hidden, 1)


@register_model("mlp", config=MLPConfig)
class MLP(nn.Module):
    def __init__(
        self, config: MLPConfig, *, input_shape: tuple[int, ...], num_classes: int
    ) -> None:
        super().__init__()
        self.config = config
        widths = [math.prod(input_shape), *config.hidden]
        layers: list[nn.Module] = []
        for w_in, w_out in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Linear(w_in, w_out), nn.ReLU()]
        layers.append(nn.Linear(widths[-1], num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, *input_shape) -> logits (B, num_classes)
        return self.net(x.flatten(1))  # (B, F) -> (B, h1) -> ... -> (B, K)
