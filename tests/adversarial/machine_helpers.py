"""What the Hypothesis state machines against the contracts share: a trampoline for py-evm's
deep calls, the custom error a refusal names, and one checked attempt of a call."""

from __future__ import annotations

import re
from typing import Any, Protocol

from hypothesis import event

from fedledger.errors import LedgerError


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
