"""Min-Sum (Shejwalkar & Houmansadr, NDSS 2021): every attacker sends μ − γ·δ with the
largest γ such that its sum of squared distances to the benign updates is at most the
largest such sum of any benign update.  See :mod:`fedledger.attacks._agr_agnostic`."""

from __future__ import annotations

import torch

from fedledger.attacks._agr_agnostic import Perturbation, agr_agnostic_update
from fedledger.attacks.base import Attack, AttackContext, reference_updates, register_attack


@register_attack("min_sum")
class MinSum(Attack):
    poisons_updates = True

    perturbation: Perturbation = "std"

    def poison_updates(
        self,
        malicious: torch.Tensor,
        benign: torch.Tensor,
        *,
        generator: torch.Generator,
        ctx: AttackContext,
    ) -> torch.Tensor:
        ref = reference_updates(malicious, benign)
        mal = agr_agnostic_update(ref, self.perturbation, "sum")
        return mal.expand(malicious.shape[0], -1).clone()
