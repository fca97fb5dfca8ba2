"""The embedded chain: py-evm through eth-tester, with a genesis that funds given accounts.

py-evm is pure Python; the engine runs it in its ledger process (engine/ledger_process.py)
so that it does not hold the trainer's GIL."""

from __future__ import annotations

from typing import Any

from hexbytes import HexBytes
from web3 import EthereumTesterProvider, Web3

OPERATOR_FUNDS = 10**6 * 10**18
EMBEDDED_CHAIN_ID = 131277322940537  # eth-tester's py-evm chain id (checked by Chain)
GENESIS_TIMESTAMP = 1_700_000_000


def tester_provider(genesis: dict[str, Any]) -> EthereumTesterProvider:
    """A fresh in-process chain whose genesis funds ``genesis["funded"]``."""
    from eth_tester import EthereumTester, PyEVMBackend

    params = PyEVMBackend.generate_genesis_params(
        overrides={"gas_limit": int(genesis["gas_limit"]), "timestamp": GENESIS_TIMESTAMP}
    )
    nonces = genesis.get("nonces", {})
    state = {
        bytes(HexBytes(a)): {
            "balance": OPERATOR_FUNDS,
            "nonce": int(nonces.get(a, 0)),
            "code": b"",
            "storage": {},
        }
        for a in genesis["funded"]
    }
    backend = PyEVMBackend(genesis_parameters=params, genesis_state=state)
    return EthereumTesterProvider(EthereumTester(backend))


def embedded_web3(genesis: dict[str, Any]) -> Web3:
    return Web3(tester_provider(genesis))
