"""fedledger: blockchain-based federated learning on a real Ethereum ledger."""

__version__ = "0.1.0"
