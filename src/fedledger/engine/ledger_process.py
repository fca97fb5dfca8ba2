"""The chain, in a process of its own.

py-evm and web3.py are pure Python: run in the trainer's process they would hold its GIL. So
the engine forks one child at the start of a run, which starts the chain, deploys and registers
(:class:`fedledger.ledger.session.LedgerSession`), and then records one
:class:`fedledger.ledger.session.RoundPlan` per round, in protocol order, through the parties'
own agents: the aggregator's transactions with the aggregator's key, left-out clients' own
submissions and committee members' votes with their own keys.

The trainer goes on meanwhile: up to ``ledger.max_rounds_ahead`` rounds may wait for the chain.
Rounds on the chain still happen strictly in order, and the contract only opens round r+1 on
round r's finalized model, which is the model the clients signed their round r+1 commitments
against: a client's update cannot count against any other model. With ``max_rounds_ahead = 0``
the trainer waits for each round to be final and the clients check the next global model
against the hash they read from the chain before they train.

Messages are plain dataclasses of bytes and ints (no tensors); errors come back as
(type name, message) strings, never as objects.
"""

from __future__ import annotations

from dataclasses import asdict
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import torch

from fedledger.engine.child import Child
from fedledger.errors import LedgerError
from fedledger.ledger.contract import LedgerParams
from fedledger.ledger.embedded import preload
from fedledger.ledger.keys import PartyKeys
from fedledger.ledger.market_session import MarketPlan
from fedledger.ledger.session import LedgerSession, ResumePoint, RoundPlan


def _serve(
    conn: Connection,
    keys: PartyKeys,
    params: LedgerParams,
    url: str,
    ledger_dir: Path,
    deploy_nonce: int | None,
    market: MarketPlan | None,
    resume: ResumePoint | None,
) -> None:
    torch.set_num_threads(1)
    try:
        session = LedgerSession(
            keys=keys,
            params=params,
            url=url,
            ledger_dir=ledger_dir,
            deploy_nonce=deploy_nonce,
            market=market,
            resume=resume,
        )
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
            try:
                if msg[0] == "record":
                    session.record_round(msg[1])
                elif msg[0] == "finish":
                    session.finish()
                elif msg[0] == "model":
                    conn.send(("ok", session.current_model_hash()))
                elif msg[0] == "settle":
                    outcome = session.settle_market()
                    counts = {"tx_count": session.tx_count, "gas_used": session.gas_used}
                    conn.send(("ok", (counts, None if outcome is None else asdict(outcome))))
                else:  # "close"
                    break
            except Exception as exc:  # reported to the parent as text
                _send_completed(conn, session)
                conn.send(("error", type(exc).__name__, str(exc)))
            else:
                _send_completed(conn, session)
    finally:
        session.close()
    conn.send(("ok", {"tx_count": session.tx_count, "gas_used": session.gas_used}))


def _send_completed(conn: Connection, session: LedgerSession) -> None:
    """One (transactions, gas) answer per round that became final, in round order."""
    for counts in session.completed:
        conn.send(("ok", counts))
    session.completed.clear()


class LedgerProcess:
    """Parent-side handle of the ledger process; starts it and returns at once."""

    def __init__(
        self,
        *,
        keys: PartyKeys,
        params: LedgerParams,
        url: str,
        ledger_dir: Path,
        deploy_nonce: int | None,
        max_rounds_ahead: int,
        market: MarketPlan | None = None,
        resume: ResumePoint | None = None,
    ) -> None:
        """``resume``: go on with an interrupted run (its round ``resume.round`` is written
        and waits on the chain for its finalization, which the next round's opening brings)."""
        if not url:
            preload()  # once per process: later runs' children start without imports
        self._child = Child(
            "ledger process",
            _serve,
            (keys, params, url, ledger_dir, deploy_nonce, market, resume),
        )
        self._info: dict[str, Any] | None = None
        # the resumed round is in flight, and its (transactions, gas) answer goes to no row
        self._in_flight = 0 if resume is None else 1
        self._unclaimed = 0 if resume is None else 1
        self._finishing = False  # "finish" sent since the last round was submitted
        self.max_rounds_ahead = max_rounds_ahead
        self.tx_count = self.gas_used = 0
        if url:  # a node can be unreachable: fail before any training
            _ = self.info

    @property
    def info(self) -> dict[str, Any]:
        """The deployment (contract, chain id, ...), once the child has set it up."""
        if self._info is None:
            self._info = self._recv()
            self.tx_count = int(self._info["tx_count"])
            self.gas_used = int(self._info["gas_used"])
        return self._info

    def submit(self, plan: RoundPlan) -> None:
        """Hand a round to the child; returns at once."""
        try:
            self._child.send(("record", plan))
        except LedgerError:  # the child is gone: report why, if it said
            _ = self.info
            raise
        self._in_flight += 1
        self._finishing = False

    @property
    def backlog_full(self) -> bool:
        """True when the trainer should wait for the chain before running ahead further."""
        return self._in_flight > self.max_rounds_ahead

    def wait(self) -> tuple[int, int]:
        """The oldest submitted round's (transactions, gas), once it is final on-chain.

        A round is finalized with the opening of the next one; when it is the last one
        submitted, the child is told that none follows yet."""
        if not self._in_flight:
            raise LedgerError("no round is in flight")
        _ = self.info
        if self._in_flight == 1 and not self._finishing:
            self._child.send(("finish",))
            self._finishing = True
        tx, gas = self._recv()
        self._in_flight -= 1
        self.tx_count += tx
        self.gas_used += gas
        if self._unclaimed:  # the resumed round's row was written before the interruption
            self._unclaimed -= 1
            return self.wait() if self._in_flight else (0, 0)
        return tx, gas

    def settle_market(self) -> dict[str, Any] | None:
        """Close the run's task market and pay everyone (every round final first); what each
        party was paid (:class:`~fedledger.ledger.market_session.MarketOutcome` as a dict)."""
        while self._in_flight:
            self.wait()
        _ = self.info
        self._child.send(("settle",))
        counts, outcome = self._recv()
        self.tx_count, self.gas_used = int(counts["tx_count"]), int(counts["gas_used"])
        return outcome

    def current_model_hash(self) -> bytes:
        """The global-model hash the chain records now (only with no round in flight)."""
        if self._in_flight:
            raise LedgerError("the chain is still recording rounds")
        _ = self.info
        self._child.send(("model",))
        value: bytes = self._recv()
        return value

    def close(self) -> None:
        """Finish the rounds in flight and stop the child (errors here were already raised by
        ``wait``; a failing run must not be masked by its clean-up)."""
        try:
            while self._in_flight:
                self.wait()
            _ = self.info
        except LedgerError:
            pass
        finally:
            self._child.stop()

    def _recv(self) -> Any:
        return self._child.recv()
