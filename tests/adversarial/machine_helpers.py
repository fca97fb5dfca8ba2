"""What the Hypothesis state machines against the contracts share: a trampoline for py-evm's
deep calls, the custom error a refusal names, and one checked attempt of a call."""

from __future__ import annotations

import re
from typing import Any, Protocol

from eth_abi import decode, encode
from hypothesis import HealthCheck, event, settings

from fedledger.errors import LedgerError
from fedledger.ledger.signing import keccak


def _make_trampoline(slots: int) -> Any:
    """``trampoline(fn, *args)`` calls ``fn(*args)`` from a frame of ``slots`` local variables.

    Why: CPython 3.11 keeps Python frames in 16 KiB chunks, mmap-ed when the call stack grows
    past one and unmapped as soon as it shrinks back. Under pytest, py-evm's deep calls
    straddle a chunk boundary and cross it thousands of times per transaction: a third of
    the ledger machine's time went to mmap/munmap (strace). A frame too big for the current
    chunk gets a fresh, larger one (sizes double: ~17 KiB of locals get a 32 KiB chunk), so
    whatever it calls runs inside that chunk: one mapping per call instead of thousands."""
    names = ", ".join(f"_v{i}" for i in range(slots))
    src = f"def trampoline(fn, *args):\n    {names} = {(None,) * slots!r}\n    return fn(*args)\n"
    namespace: dict[str, Any] = {}
    exec(src, namespace)
    return namespace["trampoline"]


TRAMPOLINE = _make_trampoline(2100)  # ~33 KiB of frame: a 64 KiB chunk, ~30 KiB free

# at least 200 sequences in CI, the same draws every time
MACHINE_SETTINGS = settings(
    max_examples=200,
    stateful_step_count=15,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def error_name(exc: LedgerError) -> str | None:
    """The custom error a refused transaction names (the wrapper's "refused: Name(...)")."""
    found = re.search(r"refused: (\w+)\(", str(exc))
    return found.group(1) if found else None


class _Chain(Protocol):
    @property
    def block_number(self) -> int: ...


class Machine(Protocol):
    block: int
    dirty: bool

    @property
    def chain(self) -> _Chain: ...


def attempt(machine: Machine, op: str, expected: str | None, send: Any) -> bool:
    """Send; the contract must accept it when ``expected`` is None, else refuse it with that
    custom error. Either way the transaction is mined, in a block of its own (a refused one
    with status 0)."""
    try:
        TRAMPOLINE(send)
    except LedgerError as exc:
        got = error_name(exc)
        assert expected is not None, f"{op}: the model accepts it but the contract refused: {exc}"
        assert got == expected, f"{op}: expected {expected}, the contract said: {exc}"
        event(f"{op}: {expected}")
        accepted = False
    else:
        assert expected is None, f"{op}: the contract accepted it; the model expects {expected}"
        event(f"{op}: accepted")
        machine.dirty = True
        accepted = True
    machine.block += 1
    assert machine.chain.block_number == machine.block, f"{op}: not mined in one block"
    return accepted


def abi_type(item: dict[str, Any]) -> str:
    """An ABI item's canonical type (tuples spelled out)."""
    if item["type"].startswith("tuple"):
        inner = ",".join(abi_type(c) for c in item["components"])
        return f"({inner}){item['type'][5:]}"
    return str(item["type"])


class Views:
    """A contract's view functions, called on eth-tester directly: through web3's contract
    machinery a small view costs about twice its EVM execution, and the invariants make a few
    dozen calls per step. (The wrappers' views are the same calls through web3.)"""

    def __init__(self, tester: Any, sender: str, abi: list[dict[str, Any]], address: str) -> None:
        self.tester = tester
        self.tx = {"from": sender, "to": address}
        self.fns: dict[str, tuple[bytes, list[str], list[str]]] = {}
        for f in abi:
            if f.get("type") == "function":
                ins = [abi_type(i) for i in f["inputs"]]
                outs = [abi_type(o) for o in f["outputs"]]
                selector = keccak(text=f"{f['name']}({','.join(ins)})")[:4]
                self.fns[f["name"]] = (selector, ins, outs)

    def __call__(self, name: str, *args: Any) -> Any:
        selector, ins, outs = self.fns[name]
        data = "0x" + (selector + encode(ins, list(args))).hex()
        raw = self.tester.call({**self.tx, "data": data}, "latest")
        values = decode(outs, bytes.fromhex(raw[2:]))
        return values[0] if len(values) == 1 else values
