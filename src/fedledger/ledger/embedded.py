"""The embedded py-evm chain, in-process or in a child process.

py-evm is pure Python: executing a block holds the GIL. In a child process the chain runs on
another core while the parent trains the next round (see ``engine.pipeline``). The parent
talks to the child through a web3 provider over a private pipe; the pipe connects this
program to its own child process (no trust boundary is crossed), so multiprocessing's default
serialisation is acceptable there, and nothing else in fedledger deserialises that way.
"""

from __future__ import annotations

import multiprocessing as mp
from multiprocessing.connection import Connection
from typing import Any

from hexbytes import HexBytes
from web3 import EthereumTesterProvider, Web3
from web3.providers.base import BaseProvider
from web3.types import RPCEndpoint, RPCResponse

OPERATOR_FUNDS = 10**6 * 10**18
GENESIS_TIMESTAMP = 1_700_000_000


def tester_provider(genesis: dict[str, Any]) -> EthereumTesterProvider:
    """A fresh in-process chain whose genesis funds ``genesis["funded"]``."""
    from eth_tester import EthereumTester, PyEVMBackend

    params = PyEVMBackend.generate_genesis_params(
        overrides={"gas_limit": int(genesis["gas_limit"]), "timestamp": GENESIS_TIMESTAMP}
    )
    state = {
        bytes(HexBytes(a)): {"balance": OPERATOR_FUNDS, "nonce": 0, "code": b"", "storage": {}}
        for a in genesis["funded"]
    }
    backend = PyEVMBackend(genesis_parameters=params, genesis_state=state)
    return EthereumTesterProvider(EthereumTester(backend))


def embedded_web3(genesis: dict[str, Any], *, child_process: bool = False) -> Web3:
    provider: BaseProvider
    provider = ChildProcessProvider(genesis) if child_process else tester_provider(genesis)
    return Web3(provider)


def _serve(conn: Connection, genesis: dict[str, Any]) -> None:
    provider = tester_provider(genesis)
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        if msg is None:
            return
        method, params = msg
        try:
            conn.send(("ok", provider.make_request(method, params)))
        except Exception as exc:  # forwarded to the parent, which re-raises it
            conn.send(("error", exc))


class ChildProcessProvider(EthereumTesterProvider):
    """EthereumTesterProvider whose chain lives in a child process.

    It keeps the parent-side request/response formatting of EthereumTesterProvider and forwards
    the raw requests.
    """

    def __init__(self, genesis: dict[str, Any]) -> None:  # noqa: D107  (no in-process tester)
        BaseProvider.__init__(self)
        self._request_func_cache = (None, None)  # type: ignore[assignment]
        # fork: the child runs only py-evm and never touches the parent's torch or threads;
        # spawn would re-import the user's __main__
        ctx = mp.get_context("fork")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child, genesis), daemon=True)
        self._proc.start()
        child.close()

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        self._conn.send((method, params))
        status, value = self._conn.recv()
        if status == "error":
            raise value
        return value

    def is_connected(self, show_traceback: bool = False) -> bool:  # type: ignore[override]
        return self._proc.is_alive()

    def close(self) -> None:
        if self._proc.is_alive():
            self._conn.send(None)
            self._proc.join(timeout=10)
        self._conn.close()
