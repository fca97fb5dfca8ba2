"""Network and consensus simulation: how long BCFL rounds take on a given network.

Pure and independent of the chain and the CLI.  Entry points: :class:`NetworkModel`
(annotate real rounds), :func:`fedledger.netsim.sweep.run_point` (one netsim sweep point),
:mod:`analysis` (BlockFL's latency model, Kim et al. 2019).

The names below are imported on first use, so that ``fedledger.netsim.config`` (and the whole
configuration) loads without numpy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fedledger._lazy import lazy_exports

if TYPE_CHECKING:
    from fedledger.netsim.annotate import NetworkModel, RoundTiming
    from fedledger.netsim.asyncfl import AsyncEvent, async_schedule
    from fedledger.netsim.config import NetworkConfig, load_network_config
    from fedledger.netsim.consensus import CONSENSUS
    from fedledger.netsim.scheduling import (
        POLICIES,
        STALENESS,
        Candidates,
        fedasync_mixing,
        fedbuff_weights,
        on_time,
    )

_EXPORTS = {
    "AsyncEvent": "asyncfl",
    "CONSENSUS": "consensus",
    "Candidates": "scheduling",
    "NetworkConfig": "config",
    "NetworkModel": "annotate",
    "POLICIES": "scheduling",
    "RoundTiming": "annotate",
    "STALENESS": "scheduling",
    "async_schedule": "asyncfl",
    "fedasync_mixing": "scheduling",
    "fedbuff_weights": "scheduling",
    "load_network_config": "config",
    "on_time": "scheduling",
}
__all__ = [
    "CONSENSUS",
    "POLICIES",
    "STALENESS",
    "AsyncEvent",
    "Candidates",
    "NetworkConfig",
    "NetworkModel",
    "RoundTiming",
    "async_schedule",
    "fedasync_mixing",
    "fedbuff_weights",
    "load_network_config",
    "on_time",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
