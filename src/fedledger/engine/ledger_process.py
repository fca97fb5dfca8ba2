"""Everything a run does for the ledger, in a process of its own.

py-evm and web3.py are pure Python: run in the trainer's process they would hold its GIL. So
the engine forks one child at the start of a run and hands it one :class:`RoundRecord` per
round: the clients' updates as the aggregator checked and used them, and the aggregator's
decisions. The child plays the parties' protocol roles that involve no training:

* the clients' side: each update is serialised (safetensors), stored under its SHA-256, and
  its EIP-712 commitment signed with the client's own key; committee members sign their votes;
* the aggregator's side: the new global model is stored, and the round is written to the
  chain by a :class:`LedgerSession` (open, commitments, left-out clients' own submissions,
  committee, finalize), which owns the chain connection, the contract and the transaction log.

The trainer goes on meanwhile; up to :data:`MAX_IN_FLIGHT` rounds (and
:data:`MAX_IN_FLIGHT_BYTES` of updates) may wait for the chain. In a deployment each client
signs on its own device, in parallel with everybody else; here one spare core does it for all.
What the aggregator aggregated is exactly what the child commits, since both come from the
same bytes, and ``fedledger audit`` checks every blob, signature and aggregate afterwards.

The pipe joins this program to its own child (no trust boundary is crossed). Update vectors go
down as raw float32 files in a private temporary directory (no pickling of tensors), the rest
as plain dataclasses; errors come back as (type name, message) strings, never as objects.
"""

from __future__ import annotations

import multiprocessing as mp
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fedledger.config import ExperimentConfig
from fedledger.errors import LedgerError
from fedledger.ledger.store import BlobStore

MAX_IN_FLIGHT = 8  # rounds the trainer may run ahead of the chain
MAX_IN_FLIGHT_BYTES = 256 * 2**20  # ...and at most this many bytes of updates waiting


@dataclass(frozen=True)
class RoundRecord:
    """One round as the aggregator saw it, for the ledger process to commit and record.

    ``order`` is the on-chain commitment order (= aggregation order); the per-client lists
    follow it. An update that is a float32 vector of the model's size travels as a row of
    the round's dense file (``dense_rows[i]``: its row, or -1); any other update travels as
    the blob bytes in ``blobs[i]`` (a test hook's raw bytes, or a wrong dtype or shape, which
    the aggregator rejected but the client still committed to).
    """

    round: int
    dim: int
    base_model_hash: bytes
    selected: list[int]
    order: list[int]
    dropped: list[int]  # clients the aggregator left out of its batch
    num_samples: list[int]
    dense_rows: list[int]
    blobs: dict[int, bytes]
    outcomes: list[int]
    flagged: list[int]
    model_blob: bytes
    committee: list[int] = field(default_factory=list)
    votes: list[list[int]] = field(default_factory=list)  # per member, per commitment
    dense_file: str = ""  # set by LedgerProcess.submit


def _serve(conn: Connection, cfg: ExperimentConfig, run_dir: Path, initial_blob: bytes) -> None:
    from fedledger.engine.parties import Parties
    from fedledger.ledger.session import LedgerSession

    torch.set_num_threads(1)
    try:
        store = BlobStore(run_dir / "store")
        initial_hash = bytes.fromhex(store.put_bytes(initial_blob))
        session = LedgerSession(cfg, run_dir=run_dir, initial_model_hash=initial_hash)
        parties = Parties(clients=session.clients, store=store, domain=session.contract.domain)
    except Exception as exc:  # reported to the parent as text
        conn.send(("error", type(exc).__name__, str(exc)))
        return
    conn.send(
        (
            "ok",
            {
                "contract": session.contract.address,
                "chain_id": session.chain.chain_id,
                "embedded": session.chain.embedded,
                "tx_count": session.tx_count,
                "gas_used": session.gas_used,
            },
        )
    )
    try:
        while True:
            try:
                msg = conn.recv()
            except EOFError:  # the parent is gone
                return
            if msg[0] != "record":  # "close"
                break
            try:
                conn.send(("ok", session.record_round(parties.commit(msg[1]))))
            except Exception as exc:  # reported to the parent as text
                conn.send(("error", type(exc).__name__, str(exc)))
    finally:
        store.close()
        session.close()
    conn.send(("ok", {"tx_count": session.tx_count, "gas_used": session.gas_used}))


class LedgerProcess:
    """Parent-side handle of the ledger process; starts it and returns at once."""

    def __init__(self, cfg: ExperimentConfig, *, run_dir: Path, initial_model_blob: bytes) -> None:
        self._tmp = Path(tempfile.mkdtemp(prefix="fedledger-rounds-"))
        # fork: the child only runs web3/py-evm; spawn would re-import the user's __main__
        ctx = mp.get_context("fork")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(
            target=_serve, args=(child, cfg, run_dir, initial_model_blob), daemon=True
        )
        self._proc.start()
        child.close()
        self._info: dict[str, Any] | None = None
        self._in_flight: list[int] = []  # bytes of each round in flight, oldest first
        self.tx_count = self.gas_used = 0
        if cfg.ledger.url:  # a node can be unreachable: fail before any training
            _ = self.info

    @property
    def info(self) -> dict[str, Any]:
        """The deployment (contract, chain id, ...), once the child has set it up."""
        if self._info is None:
            self._info = self._recv()
            self.tx_count = int(self._info["tx_count"])
            self.gas_used = int(self._info["gas_used"])
        return self._info

    def submit(self, record: RoundRecord, *, dense: list[torch.Tensor]) -> None:
        """Hand a round to the child; returns at once. ``dense`` are the float32 update
        vectors that ``record.dense_rows`` point into."""
        path = self._tmp / f"round-{record.round}.f32"
        nbytes = 0
        if dense:
            rows = torch.stack(dense).numpy()
            rows.tofile(path)
            nbytes = rows.nbytes
        try:
            self._conn.send(("record", replace(record, dense_file=str(path) if dense else "")))
        except OSError:  # the child is gone: report why
            _ = self.info
            raise LedgerError(
                f"the ledger process exited unexpectedly (exit code {self._proc.exitcode})"
            ) from None
        self._in_flight.append(nbytes + sum(len(b) for b in record.blobs.values()))

    @property
    def backlog_full(self) -> bool:
        """True when the trainer should wait for the chain before running ahead further."""
        return len(self._in_flight) > MAX_IN_FLIGHT or (
            len(self._in_flight) > 1 and sum(self._in_flight) > MAX_IN_FLIGHT_BYTES
        )

    def wait(self) -> tuple[int, int]:
        """The oldest submitted round's (transactions, gas), once it is on-chain."""
        if not self._in_flight:
            raise LedgerError("no round is in flight")
        _ = self.info
        tx, gas = self._recv()
        self._in_flight.pop(0)
        self.tx_count += tx
        self.gas_used += gas
        return tx, gas

    def close(self) -> None:
        """Finish the rounds in flight and stop the child (errors here were already raised by
        ``wait``; a failing run must not be masked by its clean-up)."""
        try:
            while self._in_flight:
                self.wait()
            if self._proc.is_alive():
                _ = self.info
                self._conn.send(("close",))
                self._recv()
        except (LedgerError, OSError):
            self._proc.terminate()
        finally:
            self._proc.join(timeout=30)
            self._conn.close()
            shutil.rmtree(self._tmp, ignore_errors=True)

    def _recv(self) -> Any:
        try:
            msg = self._conn.recv()
        except EOFError:
            raise LedgerError(
                f"the ledger process exited unexpectedly (exit code {self._proc.exitcode})"
            ) from None
        if msg[0] == "error":
            raise LedgerError(f"{msg[1]}: {msg[2]}")
        return msg[1]


def read_dense(record: RoundRecord) -> np.ndarray:
    """The round's dense update rows, (rows, dim) float32 (child side); the file is removed
    once read."""
    if not record.dense_file:
        return np.zeros((0, record.dim), dtype=np.float32)
    path = Path(record.dense_file)
    rows = np.fromfile(path, dtype=np.float32).reshape(-1, record.dim)
    path.unlink()
    return rows
