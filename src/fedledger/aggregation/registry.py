"""The aggregation-rule registry: every built-in rule's name and the module that registers it.

Light on purpose (no torch): ``aggregation.name`` is checked against it while a configuration is
validated; a rule's module is imported when the rule is first created.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fedledger.registry import Registry

if TYPE_CHECKING:
    from fedledger.aggregation.base import RuleSpec

_MODULE = {"multikrum": "krum"}  # rules that share a module; every other rule has its own
_NAMES = (
    *("bulyan", "committee", "cosine_filter", "fedavg", "flame", "fltrust", "foolsgold"),
    *("geomedian", "krum", "median", "multikrum", "norm_clipping", "trimmed_mean"),
)

RULES: Registry[RuleSpec] = Registry(
    "aggregation rule",
    builtins={name: f"fedledger.aggregation.{_MODULE.get(name, name)}" for name in _NAMES},
)
