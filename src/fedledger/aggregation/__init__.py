"""Aggregation rules: pure functions over an (n, d) tensor, one rule per module, registered by
name.

The names below are imported on first use, so that the configuration can check
``aggregation.name`` against :data:`~fedledger.aggregation.registry.RULES` without torch; a
rule's module is imported when the rule is first created.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
