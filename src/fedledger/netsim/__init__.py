"""Network and consensus simulation: how long BCFL rounds take on a given network.

Pure and independent of the chain and the CLI.  Entry points: :class:`NetworkModel`
(annotate real rounds), :func:`fedledger.netsim.sweep.run_point` (one netsim sweep point),
:mod:`analysis` (BlockFL's latency model, Kim et al. 2019).
"""

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
