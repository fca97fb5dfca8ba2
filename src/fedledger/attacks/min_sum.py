"""Min-Sum (Shejwalkar & Houmansadr, NDSS 2021): every attacker sends μ − γ·δ with the
largest γ such that its sum of squared distances to the benign updates is at most the
largest such sum of any benign update.  See :mod:`fedledger.attacks._agr_agnostic`."""

from __future__ import annotations

from typing import ClassVar, Literal

from fedledger.attacks.base import register_attack
from fedledger.attacks.min_max import MinMax


@register_attack("min_sum")
class MinSum(MinMax):
    """Same search as Min-Max, with the sum of squared distances as the objective."""

    objective: ClassVar[Literal["max", "sum"]] = "sum"
