"""The round protocol and the experiment loop."""

from fedledger.engine.experiment import run_experiment
from fedledger.engine.rounds import Hooks
from fedledger.protocol.selection import select_clients

__all__ = ["Hooks", "run_experiment", "select_clients"]
