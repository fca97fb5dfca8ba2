"""Typed wrappers around the reward token and the TaskMarket contract, and the round entries'
Merkle tree exactly as the contract builds it.

A round's entries are one :class:`Entry` per worker, in join order; the tree has one leaf per
worker (:func:`entry_hash`), a node is ``keccak256(left || right)`` and an odd last node moves
up unchanged, so a proof also fixes the worker's position (no entry can be left out or
duplicated).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from enum import IntEnum
from typing import Any

from eth_abi import encode
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from web3.contract import Contract

from fedledger.errors import LedgerError
from fedledger.ledger.chain import Chain
from fedledger.ledger.contract import deploy_artifact, load_artifact, send_call

ENTRY_SIZE = 17  # score(8) | work(8) | flags(1): bit 0 bonus, bit 1 validator
BPS = 10_000

# gas per call: (base, per item); tests/test_market.py checks receipts stay below them
GAS_TOKEN_DEPLOY = 1_500_000
GAS_MARKET_DEPLOY = 5_000_000
GAS_APPROVE = 60_000
GAS_TRANSFER = 60_000
GAS_CREATE = 400_000
GAS_JOIN = 160_000
GAS_BOND = 100_000
GAS_BIND = (120_000, 12_000)  # per worker: one registration lookup on the ledger
GAS_POST_ROUND = (250_000, 12_000)  # per worker: its entry, leaf, ledger check, tree node
GAS_CHALLENGE = (150_000, 3_000)  # per proof node and per batch commitment
GAS_CLAIM = (150_000, 25_000)  # per claimed round
GAS_SMALL = 150_000  # stall, cancel, claimStake, settleBond, reclaim, withdraw
GAS_CLOSE = (120_000, 30_000)  # per worker: its flags on the ledger, a slash


class Phase(IntEnum):
    NONE = 0
    JOINING = 1
    RUNNING = 2
    CLOSED = 3
    STALLED = 4
    FAULTED = 5
    CANCELLED = 6


@dataclass(frozen=True)
class Terms:
    """A task's terms (the contract's ``Terms`` struct); amounts in token base units, periods
    in blocks."""

    token: str
    aggregator: str
    spec_hash: bytes
    budget: int
    cost_budget: int
    stake: int
    aggregator_bond: int
    cost_rate_cap: int
    max_work_per_round: int
    max_workers: int
    rounds: int
    epochs: int
    bonus_bps: int
    validator_bps: int
    scoring: int
    join_deadline: int
    bind_period: int
    round_period: int
    challenge_window: int

    def as_tuple(self) -> tuple[Any, ...]:
        d = asdict(self)
        d["token"] = to_checksum_address(self.token)
        d["aggregator"] = to_checksum_address(self.aggregator)
        return tuple(d.values())

    @property
    def escrow(self) -> int:
        return self.budget + self.cost_budget

    def pools(self) -> Pools:
        """What one round's scores, bonus winners and agreeing validators share."""
        return round_pools(self.budget, self.bonus_bps, self.validator_bps, self.rounds)


@dataclass(frozen=True)
class Pools:
    """One round's pools, in base units: scores share ``reward``, the bonus-flagged workers
    ``bonus``, the validator-flagged ones ``validator``."""

    reward: int
    bonus: int
    validator: int


def round_pools(budget: int, bonus_bps: int, validator_bps: int, rounds: int) -> Pools:
    """One round's pools, as the contract's _pool."""

    def pool(bps: int) -> int:
        return budget * bps // BPS // rounds

    return Pools(pool(BPS - bonus_bps - validator_bps), pool(bonus_bps), pool(validator_bps))


@dataclass(frozen=True)
class Entry:
    """One worker's entry in a round: its contribution score (a non-negative integer), its
    work units (samples x epochs), whether it earns the round's bonus, and whether it earns the
    validation reward (a committee member whose vote agreed with the round's outcome)."""

    score: int = 0
    work: int = 0
    bonus: bool = False
    validator: bool = False

    def as_tuple(self) -> tuple[int, int, bool, bool]:
        return (self.score, self.work, self.bonus, self.validator)

    @property
    def flags(self) -> int:
        return int(self.bonus) | int(self.validator) << 1


def pack_entries(entries: Sequence[Entry]) -> bytes:
    out = bytearray()
    for e in entries:
        if not (0 <= e.score < 2**64 and 0 <= e.work < 2**64):
            raise LedgerError(f"an entry's score and work must fit a uint64, got {e}")
        out += e.score.to_bytes(8, "big") + e.work.to_bytes(8, "big") + bytes([e.flags])
    return bytes(out)


def unpack_entries(raw: bytes) -> list[Entry]:
    """The entries of a posted round (its RoundScored event's bytes)."""
    return [
        Entry(
            score=int.from_bytes(raw[k : k + 8], "big"),
            work=int.from_bytes(raw[k + 8 : k + 16], "big"),
            bonus=raw[k + 16] & 1 != 0,
            validator=raw[k + 16] & 2 != 0,
        )
        for k in range(0, len(raw), ENTRY_SIZE)
    ]


def entry_hash(market: str, task: int, round: int, index: int, e: Entry) -> bytes:
    return keccak(
        encode(
            ["address", "uint256", "uint256", "uint256", "uint64", "uint64", "bool", "bool"],
            [to_checksum_address(market), task, round, index, *e.as_tuple()],
        )
    )


def _node(a: bytes, b: bytes) -> bytes:
    return keccak(a + b)


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    level = list(leaves)
    if not level:
        raise LedgerError("a round's tree needs at least one leaf")
    while len(level) > 1:
        level = [
            _node(level[i], level[i + 1]) if i + 1 < len(level) else level[i]
            for i in range(0, len(level), 2)
        ]
    return level[0]


def merkle_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """The sibling hashes from leaf ``index`` up to the root (none where a node moves up)."""
    level, proof = list(leaves), []
    while len(level) > 1:
        sibling = index ^ 1
        if sibling < len(level):
            proof.append(level[sibling])
        level = [
            _node(level[i], level[i + 1]) if i + 1 < len(level) else level[i]
            for i in range(0, len(level), 2)
        ]
        index >>= 1
    return proof


class RewardToken:
    """The ERC-20 with permit a market pays in on the embedded chain (all minted to the
    deployer)."""

    def __init__(self, chain: Chain, address: str) -> None:
        self.chain = chain
        self.abi: list[dict[str, Any]] = load_artifact("RewardToken")["abi"]
        self.address = to_checksum_address(address)
        self.contract: Contract = chain.w3.eth.contract(address=self.address, abi=self.abi)

    @classmethod
    def deploy(cls, chain: Chain, owner: LocalAccount, *, supply: int) -> RewardToken:
        args = encode(["string", "string", "uint256"], ["fedledger reward", "FLR", supply])
        return cls(
            chain,
            deploy_artifact(
                chain, owner, "RewardToken", args, gas=GAS_TOKEN_DEPLOY, label="deployToken"
            ),
        )

    def _send(self, account: LocalAccount, fn: Any, *, gas: int, label: str) -> dict[str, Any]:
        return send_call(self.chain, self.abi, self.address, account, fn, gas=gas, label=label)

    def transfer(self, sender: LocalAccount, to: str, amount: int) -> None:
        self._send(
            sender, self.contract.functions.transfer(to, amount), gas=GAS_TRANSFER, label="transfer"
        )

    def approve(self, owner: LocalAccount, spender: str, amount: int) -> None:
        self._send(
            owner,
            self.contract.functions.approve(spender, amount),
            gas=GAS_APPROVE,
            label="approve",
        )

    def balance_of(self, account: str) -> int:
        return int(self.contract.functions.balanceOf(to_checksum_address(account)).call())

    def permit_signature(
        self, owner: LocalAccount, spender: str, amount: int, deadline: int
    ) -> tuple[int, bytes, bytes]:
        """(v, r, s) of an EIP-2612 permit signed by ``owner``."""
        nonce = int(self.contract.functions.nonces(owner.address).call())
        signed = owner.sign_typed_data(
            domain_data={
                "name": "fedledger reward",
                "version": "1",
                "chainId": self.chain.chain_id,
                "verifyingContract": self.address,
            },
            message_types={
                "Permit": [
                    {"name": "owner", "type": "address"},
                    {"name": "spender", "type": "address"},
                    {"name": "value", "type": "uint256"},
                    {"name": "nonce", "type": "uint256"},
                    {"name": "deadline", "type": "uint256"},
                ]
            },
            message_data={
                "owner": owner.address,
                "spender": to_checksum_address(spender),
                "value": amount,
                "nonce": nonce,
                "deadline": deadline,
            },
        )
        return signed.v, signed.r.to_bytes(32, "big"), signed.s.to_bytes(32, "big")


class TaskMarketContract:
    """Methods named after the contract's; each state change is one logged transaction."""

    def __init__(self, chain: Chain, address: str) -> None:
        self.chain = chain
        self.abi: list[dict[str, Any]] = load_artifact("TaskMarket")["abi"]
        self.address = to_checksum_address(address)
        self.contract: Contract = chain.w3.eth.contract(address=self.address, abi=self.abi)

    @classmethod
    def deploy(cls, chain: Chain, deployer: LocalAccount) -> TaskMarketContract:
        return cls(
            chain,
            deploy_artifact(
                chain, deployer, "TaskMarket", b"", gas=GAS_MARKET_DEPLOY, label="deployMarket"
            ),
        )

    def _send(
        self, account: LocalAccount, fn: Any, *, gas: int, label: str, round: int | None = None
    ) -> dict[str, Any]:
        return send_call(
            self.chain, self.abi, self.address, account, fn, gas=gas, label=label, round=round
        )

    # ------------------------------------------------------------ transactions
    def create_task(
        self, requester: LocalAccount, terms: Terms, *, token: RewardToken | None = None
    ) -> int:
        """Approve the escrow (when ``token`` is given) and post the task; its id."""
        if token is not None:
            token.approve(requester, self.address, terms.escrow)
        task = self.task_count()
        self._send(
            requester,
            self.contract.functions.createTask(terms.as_tuple()),
            gas=GAS_CREATE,
            label="createTask",
        )
        return task

    def create_task_with_permit(
        self, requester: LocalAccount, terms: Terms, token: RewardToken, *, deadline: int
    ) -> int:
        v, r, s = token.permit_signature(requester, self.address, terms.escrow, deadline)
        task = self.task_count()
        fn = self.contract.functions.createTaskWithPermit(terms.as_tuple(), deadline, v, r, s)
        self._send(requester, fn, gas=GAS_CREATE + 60_000, label="createTaskWithPermit")
        return task

    def join(self, worker: LocalAccount, task: int, *, rate: int) -> None:
        self._send(worker, self.contract.functions.join(task, rate), gas=GAS_JOIN, label="join")

    def post_bond(self, aggregator: LocalAccount, task: int) -> None:
        self._send(
            aggregator, self.contract.functions.postBond(task), gas=GAS_BOND, label="postBond"
        )

    def bind(self, requester: LocalAccount, task: int, ledger: str) -> None:
        n = self.task_info(task)["num_workers"]
        fn = self.contract.functions.bind(task, to_checksum_address(ledger))
        self._send(requester, fn, gas=GAS_BIND[0] + GAS_BIND[1] * n, label="bind")

    def post_round(
        self, aggregator: LocalAccount, task: int, round: int, entries: Sequence[Entry]
    ) -> dict[str, Any]:
        fn = self.contract.functions.postRound(task, round, pack_entries(entries))
        gas = GAS_POST_ROUND[0] + GAS_POST_ROUND[1] * len(entries)
        return self._send(aggregator, fn, gas=gas, label="postRound", round=round)

    def challenge_work(
        self,
        prover: LocalAccount,
        task: int,
        *,
        round: int,
        worker: int,
        entry: Entry,
        proof: Sequence[bytes],
        batch: int,
        position: int,
        packed_batch: bytes,
    ) -> None:
        arg = (round, worker, entry.as_tuple(), list(proof), batch, position, packed_batch)
        gas = GAS_CHALLENGE[0] + GAS_CHALLENGE[1] * (len(proof) + len(packed_batch) // 108)
        self._send(
            prover,
            self.contract.functions.challengeWork(task, arg),
            gas=gas,
            label="challengeWork",
            round=round,
        )

    def stall(self, caller: LocalAccount, task: int) -> None:
        self._send(caller, self.contract.functions.stall(task), gas=GAS_SMALL, label="stall")

    def cancel(self, caller: LocalAccount, task: int) -> None:
        self._send(caller, self.contract.functions.cancel(task), gas=GAS_SMALL, label="cancel")

    def close(self, caller: LocalAccount, task: int) -> None:
        n = self.task_info(task)["num_workers"]
        self._send(
            caller,
            self.contract.functions.close(task),
            gas=GAS_CLOSE[0] + GAS_CLOSE[1] * n,
            label="close",
        )

    def claim(
        self,
        worker: LocalAccount,
        task: int,
        claims: Sequence[tuple[int, Entry, Sequence[bytes]]],
    ) -> dict[str, Any]:
        """Credit the worker's pay for ``(round, entry, proof)`` claims."""
        rounds = [c[0] for c in claims]
        entries = [c[1].as_tuple() for c in claims]
        proofs = [list(c[2]) for c in claims]
        fn = self.contract.functions.claim(task, rounds, entries, proofs)
        return self._send(worker, fn, gas=GAS_CLAIM[0] + GAS_CLAIM[1] * len(claims), label="claim")

    def claim_stake(self, worker: LocalAccount, task: int) -> None:
        self._send(
            worker, self.contract.functions.claimStake(task), gas=GAS_SMALL, label="claimStake"
        )

    def settle_bond(self, caller: LocalAccount, task: int) -> None:
        self._send(
            caller, self.contract.functions.settleBond(task), gas=GAS_SMALL, label="settleBond"
        )

    def reclaim(self, requester: LocalAccount, task: int) -> None:
        self._send(requester, self.contract.functions.reclaim(task), gas=GAS_SMALL, label="reclaim")

    def withdraw(self, account: LocalAccount, task: int) -> dict[str, Any]:
        return self._send(
            account, self.contract.functions.withdraw(task), gas=GAS_SMALL, label="withdraw"
        )

    # ------------------------------------------------------------ views
    def task_count(self) -> int:
        return int(self.contract.functions.taskCount().call())

    def task_info(self, task: int) -> dict[str, Any]:
        names = (
            "phase",
            "requester",
            "ledger",
            "num_workers",
            "next_round",
            "deposited",
            "credited",
            "granted",
            "slashed_total",
        )
        values = self.contract.functions.taskInfo(task).call()
        info = dict(zip(names, values, strict=True))
        info["phase"] = Phase(info["phase"])
        return info

    def owed(self, task: int, account: str) -> int:
        return int(self.contract.functions.owed(task, to_checksum_address(account)).call())

    def is_slashed(self, task: int, index: int) -> bool:
        return bool(self.contract.functions.isSlashed(task, index).call())

    def scored_round(self, task: int, round: int) -> dict[str, Any]:
        names = (
            "root",
            "total_score",
            "bonus_count",
            "validator_count",
            "posted_at",
            "voided",
            "cost",
            "cost_paid",
        )
        return dict(
            zip(names, self.contract.functions.scoredRound(task, round).call(), strict=True)
        )

    def pay_for(self, task: int, round: int, index: int, entry: Entry) -> int:
        return int(self.contract.functions.payFor(task, round, index, entry.as_tuple()).call())

    def entry_hash(self, task: int, round: int, index: int, entry: Entry) -> bytes:
        return entry_hash(self.address, task, round, index, entry)

    def tree(self, task: int, round: int, entries: Sequence[Entry]) -> list[bytes]:
        """The round's leaves, in worker order."""
        return [self.entry_hash(task, round, i, e) for i, e in enumerate(entries)]
