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


def _validator() -> Any:
    """eth-tester's validator, minus the checks of py-evm's own output (blocks, receipts,
    logs): those re-validate every block's transaction list on each query and cost more than
    the transactions themselves. What comes in (raw transactions, calls) is still checked."""
    from eth_tester.validation.default import DefaultValidator

    class TrustOwnOutput(DefaultValidator):
        @staticmethod
        def _skip(value: Any) -> None:
            return None

        validate_outbound_block = _skip
        validate_outbound_receipt = _skip
        validate_outbound_log_entry = _skip
        validate_outbound_transaction = _skip

    return TrustOwnOutput()


def preload() -> None:
    """Import py-evm and eth-tester now (a forked child then starts without importing them)."""
    import eth.vm.forks.cancun  # noqa: F401
    import eth_tester  # noqa: F401


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
    return EthereumTesterProvider(EthereumTester(backend, validator=_validator()))


def embedded_web3(genesis: dict[str, Any]) -> Web3:
    return Web3(tester_provider(genesis))
