"""Aggregation rules: pure functions over an (n, d) tensor, one rule per module, registered by
name.

The names below are imported on first use, so that the configuration can check
``aggregation.name`` against :data:`~fedledger.aggregation.registry.RULES` without torch; a
rule's module is imported when the rule is first created.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fedledger._lazy import lazy_exports

if TYPE_CHECKING:
    from fedledger.aggregation.base import (
        AggregationContext,
        AggregationResult,
        AggregationRule,
        create_rule,
        register_rule,
        rule_names,
    )

_EXPORTS = {
    "AggregationContext": "base",
    "AggregationResult": "base",
    "AggregationRule": "base",
    "create_rule": "base",
    "register_rule": "base",
    "rule_names": "base",
}
__all__ = [
    "AggregationContext",
    "AggregationResult",
    "AggregationRule",
    "create_rule",
    "register_rule",
    "rule_names",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
