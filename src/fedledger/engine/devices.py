"""The clients' devices and the aggregator's inbox, simulated in one worker process.

In a deployment every client encodes, hashes and signs its own update on its own device, in
parallel, and uploads the blob to the store; the aggregator checks each blob's hash and each
commitment's signature on receipt, before it aggregates. Here those steps run in a forked
worker beside the trainer, in that order and through two separate code paths:

* the client side (:func:`fedledger.protocol.client.commit_update`), with that client's key;
* the aggregator side (:func:`fedledger.protocol.aggregator.verify_receipt`), which gets the
  blob, the signed commitment and the client's *address*: no key.

The trainer hands each update down while it trains the next clients, and at the end of the
round collects one :class:`Receipt` per client before it aggregates; the worker writes the
round's blobs to the store while the trainer aggregates.
Dense updates go through a shared-memory slot per client of the round, published on a shared
board (:class:`_Board`) that the worker looks at while the round is open: handing an update
over is a copy and a counter, with no message, so the trainer never wakes the worker (a
wake-up through the pipe cost the trainer ~50 us here, a third of what signing and checking
an update costs the worker) and never blocks on a full pipe. Other updates (bytes, malformed tensors) and the round's start and end go by pipe.
Blobs go to the content-addressed store (the store operator's role). The pipe joins this
program to its own child, no trust boundary: updates travel as raw float32 bytes or blob
bytes, receipts as plain tuples, never pickled tensors.
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing import shared_memory
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
import torch
from eth_account.signers.local import LocalAccount

from fedledger.engine.child import Child
from fedledger.ledger.signing import Commitment, SignedCommitment
from fedledger.ledger.store import BlobStore
from fedledger.protocol.aggregator import verify_receipt
from fedledger.protocol.blobs import update_blob
from fedledger.protocol.client import commit_update

MAX_SHARED = 1 << 30  # bytes of update slots shared with the worker (beyond: the pipe)
POLL_S = 0.0005  # while a round is open, the worker looks at the board this often (or at once
# when a message comes): about one client's training on the smallest built-in model

# (round, client, blob, signed) -> (blob or None, signed): what the network delivers instead
TamperHook = Callable[[int, int, bytes, SignedCommitment], "tuple[bytes | None, SignedCommitment]"]


@dataclass(frozen=True)
class Receipt:
    """What the aggregator received from one client, and its receipt check's verdict."""

    signed: SignedCommitment  # the commitment that reached the aggregator
    sent: SignedCommitment  # the one the client signed (the same, unless the network lied)
    verdict: int  # fedledger.protocol.outcomes: USED, BAD_SIGNATURE, BLOB_MISSING, HASH_MISMATCH
    detail: str
    blob: bytes | None  # the delivered blob when it differs from the one the client made


class _Board:
    """The round's shared update slots and what has been published in them, shared by the
    trainer and its forked worker. The trainer writes slot ``i``, then publishes it under the
    lock; the worker reads the count under the same lock, which orders its reads of the slots
    after the trainer's writes on any CPU architecture."""

    def __init__(self, shm: shared_memory.SharedMemory, slots: int, dim: int) -> None:
        ctx = mp.get_context("fork")
        self.slots = np.ndarray((slots, dim), dtype=np.float32, buffer=shm.buf)
        self._meta = ctx.RawArray("q", 2 * slots)  # (client, num_samples) per slot
        self._count = ctx.RawValue("q", 0)
        self._lock = ctx.Lock()

    def reset(self) -> None:
        """Empty the board (only while the worker does not look: between rounds)."""
        with self._lock:
            self._count.value = 0

    def publish(self, slot: int, cid: int, num_samples: int) -> None:
        """Slot ``slot`` (the next one) holds client ``cid``'s update."""
        with self._lock:
            self._meta[2 * slot] = cid
            self._meta[2 * slot + 1] = num_samples
            self._count.value = slot + 1

    def published(self) -> int:
        with self._lock:
            return int(self._count.value)

    def entry(self, slot: int) -> tuple[int, int, np.ndarray]:
        """(client, num_samples, update) of a published slot."""
        return int(self._meta[2 * slot]), int(self._meta[2 * slot + 1]), self.slots[slot]


def _serve(
    conn: Connection,
    clients: tuple[LocalAccount, ...],
    store_dir: Path,
    domain: bytes,
    board: _Board | None,
    tamper: TamperHook | None,
    stored: Any,
) -> None:
    torch.set_num_threads(1)
    addresses = [c.address for c in clients]
    try:
        store = BlobStore(store_dir)
    except Exception as exc:  # reported to the parent as text
        conn.send(("error", type(exc).__name__, str(exc)))
        return
    rnd, base = -1, b""
    receipts: dict[int, tuple[Any, ...]] = {}

    def handle(cid: int, num_samples: int, update: np.ndarray | bytes) -> tuple[Any, ...]:
        # the client's device: encode, hash, sign with its own key, upload
        blob, signed = commit_update(
            update,
            round=rnd,
            base_model_hash=base,
            num_samples=num_samples,
            account=clients[cid],
            domain=domain,
        )
        delivered: bytes | None = blob
        sent = signed
        if tamper is not None:
            delivered, signed = tamper(rnd, cid, blob, signed)
        if delivered is not None:
            known = signed.commitment.update_hash.hex() if delivered is blob else None
            store.put_bytes(delivered, digest=known)
        # the aggregator's inbox: check before anything is aggregated
        verdict, detail = verify_receipt(
            delivered,
            signed,
            client=addresses[cid],
            round=rnd,
            base_model_hash=base,
            domain=domain,
        )
        return (
            _signed_tuple(signed),
            None if sent is signed else _signed_tuple(sent),
            verdict,
            detail,
            delivered if delivered is not blob else None,
        )

    open_round = False  # between "round" and "finish": the board is watched
    done = 0  # slots of the board handled this round

    def take_published() -> None:
        nonlocal done
        assert board is not None
        count = board.published()
        while done < count:
            cid, num_samples, update = board.entry(done)
            receipts[cid] = handle(cid, num_samples, update)
            done += 1

    try:
        while True:
            if open_round and board is not None:
                take_published()
                if not conn.poll(POLL_S):
                    continue
            try:
                msg = conn.recv()
            except EOFError:  # the parent is gone
                return
            kind = msg[0]
            if kind == "round":
                _, rnd, base = msg
                receipts = {}
                open_round, done = True, 0
                store.begin()
            elif kind == "update":  # one update that travels through the pipe
                _, cid, num_samples = msg
                receipts[cid] = handle(cid, num_samples, conn.recv_bytes())
            elif kind == "finish":  # everything published before it is on the board now
                if board is not None:
                    take_published()
                open_round = False
                # the receipts first: the trainer aggregates while the blobs are written
                conn.send(("ok", receipts))
                store.commit()
            elif kind == "global":  # the aggregator uploads the new global model
                store.put_bytes(msg[1])  # outside a batch: committed at once
                stored.value = rnd
            elif kind == "sync":
                conn.send(("ok", None))
            else:  # "close"
                store.commit()
                break
    except Exception as exc:  # reported to the parent as text
        conn.send(("error", type(exc).__name__, str(exc)))
        return
    finally:
        store.close()
    conn.send(("ok", None))


def _signed_tuple(s: SignedCommitment) -> tuple[Any, ...]:
    c = s.commitment
    return (c.round, c.base_model_hash, c.update_hash, c.num_samples, s.client, s.r, s.vs)


def _signed_from(t: tuple[Any, ...]) -> SignedCommitment:
    rnd, base, h, n, client, r, vs = t
    return SignedCommitment(
        commitment=Commitment(round=rnd, base_model_hash=base, update_hash=h, num_samples=n),
        client=client,
        r=r,
        vs=vs,
    )


class Devices:
    """Parent-side handle of the worker; see the module docstring."""

    def __init__(
        self,
        *,
        clients: tuple[LocalAccount, ...],
        store_dir: Path,
        domain: bytes,
        dim: int,
        tamper: TamperHook | None = None,
        max_clients: int,
    ) -> None:
        """``max_clients``: the most updates a round hands over (one shared slot each)."""
        size = max_clients * dim * 4
        self._shm = (
            shared_memory.SharedMemory(create=True, size=size) if 0 < size <= MAX_SHARED else None
        )
        self._board = _Board(self._shm, max_clients, dim) if self._shm is not None else None
        # the last round whose blobs and global model the store has committed (-1: none)
        self._stored = mp.get_context("fork").RawValue("q", -1)
        self._child = Child(
            "devices worker",
            _serve,
            (clients, store_dir, domain, self._board, tamper, self._stored),
        )
        self.dim = dim
        self._next_slot = 0

    def start_round(self, rnd: int, base_model_hash: bytes) -> None:
        self._next_slot = 0
        if self._board is not None:
            self._board.reset()
        self._send(("round", rnd, base_model_hash))

    def send_update(self, cid: int, update: torch.Tensor | bytes, num_samples: int) -> None:
        """Hand one client's final update to its device (returns at once)."""
        board = self._board
        if (
            board is not None
            and isinstance(update, torch.Tensor)
            and update.dtype == torch.float32
            and tuple(update.shape) == (self.dim,)
            and self._next_slot < len(board.slots)
        ):
            board.slots[self._next_slot] = update.numpy()
            board.publish(self._next_slot, cid, num_samples)
            self._next_slot += 1
            return
        # bytes, or a malformed tensor (the client sends what safetensors makes of it)
        payload = update if isinstance(update, bytes) else update_blob(update)
        self._send(("update", cid, num_samples), payload=payload)

    def finish_round(self) -> dict[int, Receipt]:
        """Every client's receipt for the round (blocks until the last one is checked)."""
        self._send(("finish",))
        raw = self._recv()
        receipts = {}
        for cid, t in raw.items():
            signed = _signed_from(t[0])
            receipts[cid] = Receipt(
                signed=signed,
                sent=signed if t[1] is None else _signed_from(t[1]),
                verdict=t[2],
                detail=t[3],
                blob=t[4],
            )
        return receipts

    def store_global(self, blob: bytes) -> None:
        """Upload the global model (returns at once). It and the round's blobs are committed
        once :attr:`stored_round` reaches the round, or the worker has answered a later message
        (it handles them in order: the next :meth:`finish_round`, or :meth:`sync`)."""
        self._send(("global", blob))

    @property
    def stored_round(self) -> int:
        """The last round whose blobs and global model are committed to the store (read
        without a message; -1 before the first)."""
        return int(self._stored.value)

    def sync(self) -> None:
        """Return once the worker has handled (and committed) everything sent before."""
        self._send(("sync",))
        self._recv()

    def close(self) -> None:
        try:
            self._child.stop()
        finally:
            if self._shm is not None:
                self._board = None
                self._shm.close()
                self._shm.unlink()

    def _send(self, msg: tuple[Any, ...], *, payload: bytes | None = None) -> None:
        self._child.send(msg, payload=payload)

    def _recv(self) -> Any:
        return self._child.recv()
