"""The round protocol and the experiment loop."""

from fedledger.engine.experiment import Hooks, run_experiment, select_clients

__all__ = ["Hooks", "run_experiment", "select_clients"]
