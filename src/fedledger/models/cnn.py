"""Small CNN: [Conv kxk ('same') -> ReLU -> MaxPool 2] per entry of ``channels`` -> (FC -> ReLU)
-> FC. Defaults (1->16->32, 5x5) follow the MNIST CNNs of the FL literature; on 28x28 inputs:
28 -> 14 -> 7, on 8x8 digits: 8 -> 4 -> 2."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from fedledger.errors import ConfigError, ModelError
from fedledger.models.registry import check_int, check_int_list, register_model


@dataclass
class CNNConfig:
    channels: list[int] = field(default_factory=lambda: [16, 32])  # out channels per conv stage
    kernel_size: int = 5  # odd, 'same' padding
    hidden: int = 0  # width of a hidden FC layer before the output; 0 = none

    def __post_init__(self) -> None:
        self.channels = check_int_list("cnn", "channels", self.channels, 1)
        if not self.channels:
            raise ConfigError("model 'cnn': channels needs at least one conv stage")
        self.kernel_size = check_int("cnn", "kernel_size", self.kernel_size, 1)
        if self.kernel_size % 2 == 0:
            raise ConfigError(f"model 'cnn': kernel_size must be odd, got {self.kernel_size}")
        self.hidden = check_int("cnn", "hidden", self.hidden, 0)


@register_model("cnn", config=CNNConfig)
class CNN(nn.Module):
    def __init__(
        self, config: CNNConfig, *, input_shape: tuple[int, ...], num_classes: int
    ) -> None:
        super().__init__()
        self.config = config
        if len(input_shape) != 3:
            raise ModelError(
                f"model 'cnn' needs image inputs (C, H, W), got input_shape {input_shape}; "
                "use 'mlp' or 'logreg' for flat features"
            )
        c, h, w = input_shape
        stages = len(config.channels)
        if min(h, w) < 2**stages:
            raise ModelError(
                f"model 'cnn': a {h}x{w} input is too small for {stages} conv+pool stages "
                f"(each halves the size; needs at least {2**stages}x{2**stages}); "
                "use fewer entries in channels"
            )
        layers: list[nn.Module] = []
        for c_out in config.channels:
            layers += [
                nn.Conv2d(c, c_out, config.kernel_size, padding=config.kernel_size // 2),
                nn.ReLU(),
                nn.MaxPool2d(2),
            ]
            c, h, w = c_out, h // 2, w // 2
        self.features = nn.Sequential(*layers)
        flat = c * h * w
        head: list[nn.Module] = []
        if config.hidden:
            head += [nn.Linear(flat, config.hidden), nn.ReLU()]
            flat = config.hidden
        head.append(nn.Linear(flat, num_classes))
        self.head = nn.Sequential(*head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, C, H, W) -> per stage (B, c_i, H/2^i, W/2^i) -> flatten (B, c*h*w) -> (B, K)
        return self.head(self.features(x).flatten(1))
