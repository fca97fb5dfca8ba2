"""The engine's side of the ledger: one object per run that deploys the contract, opens rounds,
signs commitments for clients, posts them, lets left-out clients submit their own, and finalizes.

Client-side and aggregator-side methods are kept apart (``client_*`` / the rest) so that the
same calls can run on separate machines later.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount

from fedledger.config import ExperimentConfig
from fedledger.errors import LedgerError
from fedledger.ledger.chain import ETHER, Chain, TxLog
from fedledger.ledger.contract import CommitmentRecord, FedLedgerContract
from fedledger.ledger.keys import derive_account
from fedledger.ledger.signing import (
    SignedCommitment,
    SignedVote,
)

DEPLOYMENT_FILE = "deployment.json"
TX_FILE = "transactions.jsonl"


@dataclass(frozen=True)
class Deployment:
    """What an auditor needs to find and replay the run's ledger (``ledger/deployment.json``)."""

    contract: str
    chain_id: int
    embedded: bool
    url: str
    genesis: dict[str, Any] | None
    deployer: str
    aggregator: str
    clients: list[str]

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.__dict__, indent=1, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: Path) -> Deployment:
        return cls(**json.loads(path.read_text()))


@dataclass(frozen=True)
class RoundPlan:
    """Everything the aggregator decided in a round, to be written to the ledger."""

    round: int
    base_model_hash: bytes
    selected: list[int]
    batch: list[SignedCommitment]  # posted by the aggregator
    left_out: list[tuple[int, SignedCommitment]]  # (client, commitment) it did not post
    order: list[int]  # clients in on-chain commitment order = aggregation order
    outcomes: list[int]  # per commitment in that order: 0 used, else a RejectReason
    flagged: list[int]
    global_model_hash: bytes
    committee: list[int] = field(default_factory=list)
    votes: list[SignedVote] = field(default_factory=list)


class LedgerSession:
    def __init__(
        self,
        cfg: ExperimentConfig,
        *,
        run_dir: Path,
        initial_model_hash: bytes,
    ) -> None:
        seed, n = cfg.seed, cfg.federation.num_clients
        self.deployer = derive_account(seed=seed, role="deployer")
        self.aggregator = derive_account(seed=seed, role="aggregator")
        self.clients: list[LocalAccount] = [
            derive_account(seed=seed, role="client", index=i) for i in range(n)
        ]
        operators = [self.deployer.address, self.aggregator.address]
        if cfg.ledger.url:
            self.chain = Chain.from_url(cfg.ledger.url, fund=operators)
        else:
            self.chain = Chain.embedded_chain(funded=operators)
        ledger_dir = run_dir / "ledger"
        ledger_dir.mkdir(parents=True, exist_ok=True)
        self.chain.log = TxLog(ledger_dir / TX_FILE)
        self.contract = FedLedgerContract.deploy(
            self.chain,
            deployer=self.deployer,
            aggregator=self.aggregator.address,
            config_hash=cfg.digest(),
            initial_model_hash=initial_model_hash,
        )
        self.contract.register_clients(self.deployer, [c.address for c in self.clients])
        self.deployment = Deployment(
            contract=self.contract.address,
            chain_id=self.chain.chain_id,
            embedded=self.chain.embedded,
            url=cfg.ledger.url,
            genesis=self.chain.genesis,
            deployer=self.deployer.address,
            aggregator=self.aggregator.address,
            clients=[c.address for c in self.clients],
        )
        self.deployment.save(ledger_dir / DEPLOYMENT_FILE)
        self._funded: set[str] = set()
        self._index: dict[str, int] = {c.address: i for i, c in enumerate(self.clients)}

    # ---------------------------------------------------------------- aggregator side
    def open_round(self, round: int, *, base_model_hash: bytes, selected: list[int]) -> None:
        self.contract.open_round(
            self.aggregator,
            round=round,
            base_model_hash=base_model_hash,
            selected=[self.clients[i].address for i in selected],
        )

    def post(self, round: int, signed: list[SignedCommitment]) -> list[CommitmentRecord]:
        return self.contract.post_commitments(self.aggregator, round=round, signed=signed)

    def finalize(
        self, round: int, *, global_model_hash: bytes, outcomes: list[int], flagged: list[int]
    ) -> None:
        self.contract.finalize_round(
            self.aggregator,
            round=round,
            global_model_hash=global_model_hash,
            outcomes=outcomes,
            flagged=[self.clients[i].address for i in flagged],
        )

    def record_round(self, plan: RoundPlan) -> tuple[int, int]:
        """One round's ledger work, in order: open, post, left-out clients submit, finalize.

        Returns (transactions, gas) it took. The on-chain order of the commitments must be the
        order the aggregator aggregated in (``plan.order``), or the audit could not recompute it.
        """
        tx0, gas0 = self.tx_count, self.gas_used
        self.open_round(plan.round, base_model_hash=plan.base_model_hash, selected=plan.selected)
        records = self.post(plan.round, plan.batch)
        posted = {r.client for r in records}
        for cid, signed in plan.left_out:  # each client checks that its commitment made it
            if self.clients[cid].address not in posted:
                records.append(self.client_submit(cid, signed))
        actual = [self._index[r.client] for r in records]
        if actual != plan.order:
            raise LedgerError(
                f"round {plan.round}: commitments were recorded in the order {actual}, "
                f"but the aggregator aggregated in the order {plan.order}"
            )
        if plan.committee:
            self.contract.select_committee(
                self.aggregator,
                round=plan.round,
                members=[self.clients[m].address for m in plan.committee],
            )
            self.contract.post_votes(self.aggregator, round=plan.round, votes=plan.votes)
        self.finalize(
            plan.round,
            global_model_hash=plan.global_model_hash,
            outcomes=plan.outcomes,
            flagged=plan.flagged,
        )
        return self.tx_count - tx0, self.gas_used - gas0

    # ---------------------------------------------------------------- client side
    def client_submit(self, client: int, signed: SignedCommitment) -> CommitmentRecord:
        """A client whose commitment the aggregator left out records it itself."""
        acct = self.clients[client]
        if acct.address not in self._funded:
            self.chain.send(
                self.deployer,
                {"to": acct.address, "value": ETHER, "data": b""},
                gas=21_000,
                label="fundClient",
            )
            self._funded.add(acct.address)
        return self.contract.submit_commitment(
            acct,
            round=signed.commitment.round,
            update_hash=signed.commitment.update_hash,
            num_samples=signed.commitment.num_samples,
        )

    # ---------------------------------------------------------------- accounting
    @property
    def tx_count(self) -> int:
        return len(self.chain.log)

    @property
    def gas_used(self) -> int:
        return self.chain.log.gas_used

    def close(self) -> None:
        self.chain.close()
