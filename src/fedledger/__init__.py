"""fedledger: blockchain-based federated learning on a real Ethereum ledger."""

import importlib.util as _util
import logging as _logging
import os as _os
from typing import TYPE_CHECKING

from fedledger._lazy import lazy_exports

if TYPE_CHECKING:
    from fedledger.api import RoundResult, RunResult, run
    from fedledger.config import ExperimentConfig, load_config

__all__ = ["ExperimentConfig", "RoundResult", "RunResult", "load_config", "run"]

__version__ = "0.1.0"

# Keccak-256 from pysha3 (the safe-pysha3 wheel) rather than pycryptodome, which eth-hash picks
# first: the same digests, about 4.7x faster per call here, and py-evm and every signature
# check hash a lot (measured: -10 % CPU in the ledger and devices processes). A backend the
# user chose in ETH_HASH_BACKEND is kept.
if _util.find_spec("sha3") is not None:
    _os.environ.setdefault("ETH_HASH_BACKEND", "pysha3")


# a library logs, the application decides where it goes (the CLI sets up stderr)
_logging.getLogger("fedledger").addHandler(_logging.NullHandler())

# the Python API (fedledger.api), imported on first use so that `import fedledger` stays light
_EXPORTS = {"run": "api", "RunResult": "api", "RoundResult": "api", "load_config": "config",
            "ExperimentConfig": "config"}  # fmt: skip
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
