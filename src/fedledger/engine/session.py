"""The engine's side of the ledger: one object per run that deploys the contract, opens rounds,
signs commitments for clients, posts them, lets left-out clients submit their own, and finalizes.

Client-side and aggregator-side methods are kept apart (``client_*`` / the rest) so that the
same calls can run on separate machines later.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount

from fedledger.config import ExperimentConfig
from fedledger.ledger.chain import ETHER, Chain, TxLog
from fedledger.ledger.contract import CommitmentRecord, FedLedgerContract
from fedledger.ledger.keys import derive_account
from fedledger.ledger.signing import Commitment, SignedCommitment, sign_commitment

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


class LedgerSession:
    def __init__(
        self, cfg: ExperimentConfig, *, run_dir: Path, initial_model_hash: bytes
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

    # ---------------------------------------------------------------- client side
    def client_sign(
        self, client: int, *, round: int, update_hash: bytes, num_samples: int
    ) -> SignedCommitment:
        return sign_commitment(
            Commitment(round=round, update_hash=update_hash, num_samples=num_samples),
            account=self.clients[client],
            domain=self.contract.domain,
        )

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
        self.chain.log.close()
