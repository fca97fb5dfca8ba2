"""A small federation on a fresh contract, for tests that call the contract directly (the
contract tests, the adversarial suite, the stateful test). Keys are seed-derived: simulated."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from eth_account.signers.local import LocalAccount

from fedledger.ledger.chain import ETHER, Chain
from fedledger.ledger.contract import CommitmentRecord, FedLedgerContract, LedgerParams
from fedledger.ledger.keys import derive_account
from fedledger.ledger.signing import Commitment, SignedCommitment, sign_commitment, sign_vote

H0 = hashlib.sha256(b"initial model").digest()
WINDOW = 2
TIMEOUT = 20


@dataclass
class Fed:
    chain: Chain
    contract: FedLedgerContract
    admin: LocalAccount
    aggregator: LocalAccount
    clients: list[LocalAccount]
    outsider: LocalAccount
    model: bytes = H0
    round: int = 0
    posted: dict[int, list[CommitmentRecord]] = field(default_factory=dict)

    def addr(self, i: int) -> str:
        return self.clients[i].address

    # ------------------------------------------------------------ the honest protocol
    def signed(
        self,
        i: int,
        *,
        round: int | None = None,
        base: bytes | None = None,
        update: bytes | None = None,
        samples: int = 5,
        signer: LocalAccount | None = None,
    ) -> SignedCommitment:
        """Client i's commitment (signed by ``signer``, default the client itself)."""
        rnd = self.round if round is None else round
        c = Commitment(
            round=rnd,
            base_model_hash=self.model if base is None else base,
            update_hash=update or hashlib.sha256(f"update {i} {rnd}".encode()).digest(),
            num_samples=samples,
        )
        s = sign_commitment(c, account=signer or self.clients[i], domain=self.contract.domain)
        return SignedCommitment(commitment=c, client=self.addr(i), r=s.r, vs=s.vs)

    def open(self, selected: list[int] | None = None) -> None:
        sel = list(range(len(self.clients))) if selected is None else selected
        self.contract.open_round(
            self.aggregator, round=self.round, base_model_hash=self.model, selected=sel
        )

    def post(self, clients: list[int], *, samples: int = 5) -> list[CommitmentRecord]:
        recs = self.contract.post_commitments(
            self.aggregator,
            round=self.round,
            signed=[self.signed(i, samples=samples) for i in clients],
        )
        self.posted.setdefault(self.round, []).extend(recs)
        return recs

    def close_window(self) -> None:
        info = self.contract.round_info(self.round)
        self.chain.mine_to(int(info["window_end"]))

    def finalize(
        self, outcomes: list[int] | None = None, flagged: list[int] | None = None
    ) -> bytes:
        n = int(self.contract.round_info(self.round)["num_commitments"])
        new = hashlib.sha256(f"model after {self.round}".encode()).digest()
        self.contract.finalize_round(
            self.aggregator,
            round=self.round,
            global_model_hash=new,
            outcomes=[0] * n if outcomes is None else outcomes,
            flagged=flagged or [],
        )
        self.model = new
        self.round += 1
        return new

    def full_round(self, clients: list[int] | None = None) -> None:
        sel = list(range(len(self.clients))) if clients is None else clients
        self.open(sel)
        self.post(sel)
        self.close_window()
        self.finalize()

    def vote(self, member: int, accept: list[int]):  # noqa: ANN201
        digest = self.contract.round_info(self.round)["commitments_digest"]
        return sign_vote(
            round=self.round,
            commitments_digest=digest,
            accept=bytes(accept),
            account=self.clients[member],
            domain=self.contract.domain,
        )

    def fund(self, account: LocalAccount) -> None:
        self.chain.send(
            self.admin,
            {"to": account.address, "value": ETHER, "data": b""},
            gas=21_000,
            label="fund",
        )


def make_fed(
    *,
    seed: int = 11,
    num_clients: int = 4,
    clients_per_round: int | None = None,
    committee_size: int = 0,
    max_flags: int = 0,
    window: int = WINDOW,
    timeout: int = TIMEOUT,
    chain: Chain | None = None,
) -> Fed:
    admin = derive_account(seed=seed, role="deployer")
    agg = derive_account(seed=seed, role="aggregator")
    clients = [derive_account(seed=seed, role="client", index=i) for i in range(num_clients)]
    outsider = derive_account(seed=seed, role="outsider")
    chain = chain or Chain.embedded_chain(funded=[admin.address, agg.address, outsider.address])
    params = LedgerParams(
        config_hash=hashlib.sha256(b"config").digest(),
        initial_model_hash=H0,
        selection_salt=hashlib.sha256(b"salt").digest(),
        aggregator=agg.address,
        clients_per_round=clients_per_round or num_clients,
        committee_size=committee_size,
        max_flags=max_flags,
        submission_window=window,
        round_timeout=timeout,
    )
    contract = FedLedgerContract.deploy(chain, admin=admin, params=params)
    contract.register_clients(admin, [c.address for c in clients])
    fed = Fed(
        chain=chain,
        contract=contract,
        admin=admin,
        aggregator=agg,
        clients=clients,
        outsider=outsider,
    )
    for c in clients:
        fed.fund(c)
    return fed
