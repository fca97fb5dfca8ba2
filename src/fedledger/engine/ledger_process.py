"""The aggregator's ledger client in its own process.

py-evm and web3.py are pure Python: run in the trainer's process they would hold its GIL. So
the engine forks one child that owns the :class:`LedgerSession` (the chain connection, the
contract, the aggregator's and deployer's keys and the transaction log) and sends it one
:class:`RoundPlan` per round; the trainer goes on with the next round meanwhile (at most one
round in flight). Clients sign their own commitments and votes in the trainer's process with
their own keys, as they would on their own devices.

The pipe joins this program to its own child (no trust boundary is crossed); plans go down as
plain dataclasses, and errors come back as (type name, message) strings, never as objects.
"""

from __future__ import annotations

import multiprocessing as mp
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount

from fedledger.config import ExperimentConfig
from fedledger.errors import LedgerError
from fedledger.ledger.keys import derive_account
from fedledger.ledger.signing import (
    Commitment,
    SignedCommitment,
    SignedVote,
    domain_separator,
    sign_commitment,
    sign_vote,
)


def _serve(
    conn: Connection, cfg: ExperimentConfig, run_dir: Path, initial_model_hash: bytes
) -> None:
    from fedledger.engine.session import LedgerSession

    try:
        session = LedgerSession(cfg, run_dir=run_dir, initial_model_hash=initial_model_hash)
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
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            session.close()
            return
        if msg[0] == "record":
            try:
                conn.send(("ok", session.record_round(msg[1])))
            except Exception as exc:  # reported to the parent as text
                conn.send(("error", type(exc).__name__, str(exc)))
        else:  # "close"
            session.close()
            conn.send(("ok", {"tx_count": session.tx_count, "gas_used": session.gas_used}))
            return


class LedgerProcess:
    """Parent-side handle: client-side signing here, everything on-chain in the child."""

    def __init__(self, cfg: ExperimentConfig, *, run_dir: Path, initial_model_hash: bytes) -> None:
        self.clients: list[LocalAccount] = [
            derive_account(seed=cfg.seed, role="client", index=i)
            for i in range(cfg.federation.num_clients)
        ]
        # fork: the child only runs web3/py-evm; spawn would re-import the user's __main__
        ctx = mp.get_context("fork")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(
            target=_serve, args=(child, cfg, run_dir, initial_model_hash), daemon=True
        )
        self._proc.start()
        child.close()
        self.info: dict[str, Any] = self._recv()
        self.domain = domain_separator(
            chain_id=self.info["chain_id"], contract=self.info["contract"]
        )
        self.tx_count = int(self.info["tx_count"])
        self.gas_used = int(self.info["gas_used"])
        self._in_flight = 0

    # ---------------------------------------------------------------- client side
    def client_sign(
        self, client: int, *, round: int, update_hash: bytes, num_samples: int
    ) -> SignedCommitment:
        return sign_commitment(
            Commitment(round=round, update_hash=update_hash, num_samples=num_samples),
            account=self.clients[client],
            domain=self.domain,
        )

    def member_sign_vote(self, member: int, *, round: int, accept: list[int]) -> SignedVote:
        return sign_vote(
            round=round, accept=bytes(accept), account=self.clients[member], domain=self.domain
        )

    # ---------------------------------------------------------------- aggregator side
    def submit(self, plan: Any) -> None:
        """Hand a round to the child; returns at once."""
        self._conn.send(("record", plan))
        self._in_flight += 1

    def wait(self) -> tuple[int, int]:
        """The oldest submitted round's (transactions, gas), once it is on-chain."""
        if self._in_flight == 0:
            raise LedgerError("no round is in flight")
        tx, gas = self._recv()
        self._in_flight -= 1
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
                self._conn.send(("close",))
                self._recv()
        except (LedgerError, OSError):
            self._proc.terminate()
        finally:
            self._proc.join(timeout=30)
            self._conn.close()

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
