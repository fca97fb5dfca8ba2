"""fedledger: blockchain-based federated learning on a real Ethereum ledger."""

import importlib.util as _util
import os as _os

__version__ = "0.1.0"

# Keccak-256 from pysha3 (the safe-pysha3 wheel) rather than pycryptodome, which eth-hash picks
# first: the same digests, about 4.7x faster per call here, and py-evm and every signature
# check hash a lot (measured: -10 % CPU in the ledger and devices processes). A backend the
# user chose in ETH_HASH_BACKEND is kept.
if _util.find_spec("sha3") is not None:
    _os.environ.setdefault("ETH_HASH_BACKEND", "pysha3")
