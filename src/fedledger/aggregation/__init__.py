"""Aggregation rules: pure functions over an (n, d) tensor, one rule per module, registered by name."""

from fedledger.aggregation import fedavg as _fedavg  # noqa: F401  (registers "fedavg")
from fedledger.aggregation.base import (
    AggregationContext,
    AggregationResult,
    AggregationRule,
    create_rule,
    register_rule,
    rule_names,
)

__all__ = [
    "AggregationContext",
    "AggregationResult",
    "AggregationRule",
    "create_rule",
    "register_rule",
    "rule_names",
]
