"""Backdoor with model replacement (Bagdasaryan et al., "How To Backdoor Federated Learning",
AISTATS 2020).

Data: a pixel-pattern trigger (a ``trigger_size`` × ``trigger_size`` square in the bottom-right
corner set to ``trigger_value``, default the data's maximum) is stamped on ``poison_fraction`` of
the attacker's samples, which are relabelled ``target_label``.  Update: model replacement
X = γ(L − G) + G, i.e. the attacker's update is boosted by γ = n / η (n participants, η the
server learning rate); with m colluding attackers each takes γ = n / (η m) so that together
they replace the model once.  ``boost`` overrides γ (1 = no boosting).
"""

from __future__ import annotations

import math

import torch
from pydantic import Field

from fedledger.attacks.base import (
    Attack,
    AttackContext,
    check_labels,
    choose,
    participants,
    register_attack,
)


def image_view(x: torch.Tensor, input_shape: tuple[int, ...]) -> torch.Tensor:
    """(N, ...) -> (N, C, H, W) copy; a flat (D,) input is a √D × √D image when D is square and
    a 1 × D strip otherwise."""
    shape = tuple(input_shape)
    if len(shape) == 1:
        side = math.isqrt(shape[0])
        shape = (1, side, side) if side * side == shape[0] else (1, 1, shape[0])
    elif len(shape) == 2:
        shape = (1, *shape)
    return x.reshape(x.shape[0], *shape[-3:]).clone()


def apply_trigger(
    x: torch.Tensor, input_shape: tuple[int, ...], *, size: int, value: float
) -> torch.Tensor:
    """Stamp the trigger square on every input of ``x``; returns a new tensor shaped like x."""
    img = image_view(x, input_shape)
    h = min(size, img.shape[-2])
    w = min(size, img.shape[-1])
    img[..., img.shape[-2] - h :, img.shape[-1] - w :] = value
    return img.reshape(x.shape)


@register_attack("backdoor")
class Backdoor(Attack):
    poisons_data = True
    poisons_updates = True

    target_label: int = Field(0, ge=0)
    trigger_size: int = Field(3, ge=1)
    trigger_value: float | None = None
    poison_fraction: float = Field(0.5, gt=0.0, le=1.0)
    boost: float | None = Field(None, gt=0.0)
    server_lr: float = Field(1.0, gt=0.0)

    def _value(self, x: torch.Tensor) -> float:
        if self.trigger_value is not None:
            return self.trigger_value
        return float(x.max()) if x.numel() else 1.0

    def trigger(self, x: torch.Tensor, input_shape: tuple[int, ...]) -> torch.Tensor:
        """Stamp this attack's trigger on every input of ``x``."""
        return apply_trigger(x, input_shape, size=self.trigger_size, value=self._value(x))

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
        picked = choose(y.shape[0], self.poison_fraction, generator)
        value = self._value(x)
        xp, yp = x.clone(), y.clone()
        if picked.numel():
            xp[picked] = apply_trigger(x[picked], input_shape, size=self.trigger_size, value=value)
            yp[picked] = self.target_label
        return xp, yp

    def boost_factor(self, num_participants: int, num_malicious: int) -> float:
        if self.boost is not None:
            return self.boost
        return num_participants / (self.server_lr * max(1, num_malicious))

    def poison_updates(
        self,
        malicious: torch.Tensor,
        benign: torch.Tensor,
        *,
        generator: torch.Generator,
        ctx: AttackContext,
    ) -> torch.Tensor:
        gamma = self.boost_factor(participants(malicious, benign, ctx), malicious.shape[0])
        return malicious * gamma

    def triggered_test_set(
        self, x: torch.Tensor, y: torch.Tensor, input_shape: tuple[int, ...]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The test inputs whose true label is not the target, with the trigger stamped on, and
        their true labels; the attack succeeds on an input classified as ``target_label``
        (see :func:`fedledger.attacks.metrics.attack_success_rate`)."""
        keep = y != self.target_label
        return self.trigger(x[keep], input_shape), y[keep].clone()
