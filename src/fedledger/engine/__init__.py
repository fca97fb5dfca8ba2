"""The round protocol and the experiment loop."""

from fedledger.engine.experiment import run_experiment
from fedledger.engine.protocol import select_clients
from fedledger.engine.rounds import Hooks

__all__ = ["Hooks", "run_experiment", "select_clients"]
