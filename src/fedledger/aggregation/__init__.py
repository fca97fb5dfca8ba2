"""Aggregation rules: pure functions over an (n, d) tensor, one rule per module, registered by
name."""

# importing a rule module registers it
from fedledger.aggregation import bulyan as _bulyan  # noqa: F401
from fedledger.aggregation import committee as _committee  # noqa: F401  (vote filter + FedAvg)
from fedledger.aggregation import cosine_filter as _cosine_filter  # noqa: F401
from fedledger.aggregation import fedavg as _fedavg  # noqa: F401
from fedledger.aggregation import flame as _flame  # noqa: F401
from fedledger.aggregation import fltrust as _fltrust  # noqa: F401
from fedledger.aggregation import foolsgold as _foolsgold  # noqa: F401
from fedledger.aggregation import geomedian as _geomedian  # noqa: F401
from fedledger.aggregation import krum as _krum  # noqa: F401  (krum, multikrum)
from fedledger.aggregation import median as _median  # noqa: F401
from fedledger.aggregation import norm_clipping as _norm_clipping  # noqa: F401
from fedledger.aggregation import trimmed_mean as _trimmed_mean  # noqa: F401
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
