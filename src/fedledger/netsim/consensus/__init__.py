"""Consensus models registered by name: ``pow``, ``pos``, ``pbft``, ``committee``."""

from fedledger.netsim.consensus import committee as _committee  # noqa: F401
from fedledger.netsim.consensus import pbft as _pbft  # noqa: F401
from fedledger.netsim.consensus import pos as _pos  # noqa: F401
from fedledger.netsim.consensus import pow as _pow  # noqa: F401
from fedledger.netsim.consensus.base import CONSENSUS, BlockPhase, ChainStats, ConsensusModel

__all__ = ["CONSENSUS", "BlockPhase", "ChainStats", "ConsensusModel"]
