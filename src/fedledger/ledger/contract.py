"""Typed wrapper around the FedLedger contract: the only place that builds its transactions."""

from __future__ import annotations

import ast
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, TypeVar

from eth_abi import decode, encode
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from hexbytes import HexBytes
from web3.contract import Contract

from fedledger.errors import LedgerError
from fedledger.ledger.chain import Chain
from fedledger.ledger.signing import SignedCommitment, SignedVote, domain_separator

# Per-call gas limits with headroom over what the calls use (no eth_estimateGas round trip: it
# would execute every transaction twice on the embedded chain).
GAS_DEPLOY = 2_500_000
GAS_REGISTER = (40_000, 30_000)  # base, per client
GAS_OPEN = (160_000, 600)  # base, per selected client (calldata + log bytes)
GAS_POST = (120_000, 4_000)  # base, per commitment
GAS_SUBMIT = 120_000
GAS_FINALIZE = (120_000, 2_000, 35_000)  # base, per outcome (tally check), per flag
GAS_COMMITTEE = (80_000, 25_000)  # base, per member
GAS_VOTES = (100_000, 40_000, 2_500)  # base, per vote, per vote and commitment
MAX_BATCH = 2_000  # commitments per transaction
PACKED_SIZE = 124

T = TypeVar("T")


def _revert_data(exc: Exception) -> bytes | str | None:
    """Revert data from a provider's exception (web3 keeps it in ``data``; eth-tester in a
    message ``execution reverted: b"..."``)."""
    data = getattr(exc, "data", None)
    if isinstance(data, str | bytes):
        return data
    msg = str(exc.args[0]) if exc.args else ""
    if 'reverted: b"' in msg or "reverted: b'" in msg:
        try:
            value = ast.literal_eval(msg.split("reverted: ", 1)[1])
        except (ValueError, SyntaxError):
            return None
        return value if isinstance(value, bytes) else None
    return None


def decode_custom_error(abi: list[dict[str, Any]], raw: object) -> str | None:
    """``0x<selector><args>`` -> ``Name(arg=value, ...)`` using the contract's custom errors."""
    if not isinstance(raw, str | bytes):
        return None
    data = bytes(HexBytes(raw))
    if len(data) < 4:
        return None
    for item in abi:
        if item.get("type") != "error":
            continue
        types = [i["type"] for i in item["inputs"]]
        sig = f"{item['name']}({','.join(types)})"
        if keccak(text=sig)[:4] == data[:4]:
            values = decode(types, data[4:])
            args = ", ".join(
                f"{i['name']}={v.hex() if isinstance(v, bytes) else v}"
                for i, v in zip(item["inputs"], values, strict=True)
            )
            return f"{item['name']}({args})"
    return None


@cache
def load_artifact(name: str = "FedLedger") -> dict[str, Any]:
    text = resources.files("fedledger.ledger").joinpath("artifacts", f"{name}.json").read_text()
    art: dict[str, Any] = json.loads(text)
    return art


@dataclass(frozen=True)
class CommitmentRecord:
    """One recorded commitment; ``index`` is its position in the round (the outcome order)."""

    round: int
    index: int
    client: str
    update_hash: bytes
    num_samples: int
    r: bytes
    vs: bytes

    @property
    def relayed(self) -> bool:
        """True when the aggregator posted it with the client's signature."""
        return any(self.r) or any(self.vs)


def pack_commitments(signed: list[SignedCommitment]) -> bytes:
    """client(20) | updateHash(32) | numSamples(8, big-endian) | r(32) | vs(32) per commitment."""
    parts = []
    for s in signed:
        c = s.commitment
        parts.append(
            bytes(HexBytes(s.client))
            + c.update_hash
            + c.num_samples.to_bytes(8, "big")
            + s.r
            + s.vs
        )
    return b"".join(parts)


def unpack_commitments(round: int, first_index: int, packed: bytes) -> list[CommitmentRecord]:
    if len(packed) % PACKED_SIZE:
        raise LedgerError(f"packed commitments of round {round} have a ragged length {len(packed)}")
    out = []
    for k in range(len(packed) // PACKED_SIZE):
        b = packed[k * PACKED_SIZE : (k + 1) * PACKED_SIZE]
        out.append(
            CommitmentRecord(
                round=round,
                index=first_index + k,
                client=to_checksum_address(b[:20]),
                update_hash=b[20:52],
                num_samples=int.from_bytes(b[52:60], "big"),
                r=b[60:92],
                vs=b[92:124],
            )
        )
    return out


def _submitted_record(a: Any) -> CommitmentRecord:
    return CommitmentRecord(
        round=int(a["round"]),
        index=int(a["index"]),
        client=to_checksum_address(a["client"]),
        update_hash=bytes(a["updateHash"]),
        num_samples=int(a["numSamples"]),
        r=bytes(32),
        vs=bytes(32),
    )


def pack_addresses(addresses: list[str]) -> bytes:
    return b"".join(bytes(HexBytes(a)) for a in addresses)


def unpack_addresses(packed: bytes) -> list[str]:
    return [to_checksum_address(packed[i : i + 20]) for i in range(0, len(packed), 20)]


class FedLedgerContract:
    """Methods named after the contract's; each state change is one logged transaction."""

    def __init__(self, chain: Chain, address: str) -> None:
        self.chain = chain
        art = load_artifact()
        self.address = to_checksum_address(address)
        self.contract: Contract = chain.w3.eth.contract(address=self.address, abi=art["abi"])
        self.domain = domain_separator(chain_id=chain.chain_id, contract=self.address)

    @classmethod
    def deploy(
        cls,
        chain: Chain,
        *,
        deployer: LocalAccount,
        aggregator: str,
        config_hash: bytes,
        initial_model_hash: bytes,
    ) -> FedLedgerContract:
        art = load_artifact()
        args = encode(
            ["bytes32", "bytes32", "address"], [config_hash, initial_model_hash, aggregator]
        )
        data = art["bytecode"] + args.hex()
        receipt = chain.send(deployer, {"data": data, "value": 0}, gas=GAS_DEPLOY, label="deploy")
        return cls(chain, receipt["contractAddress"])

    def _send(
        self, account: LocalAccount, fn: Any, *, gas: int, label: str, round: int | None
    ) -> dict[str, Any]:
        data = fn._encode_transaction_data()
        try:
            return self.chain.send(
                account,
                {"to": self.address, "data": data, "value": 0},
                gas=gas,
                label=label,
                round=round,
            )
        except LedgerError as exc:
            reason = self.explain_revert(account.address, data)
            if reason:
                raise LedgerError(f"{exc}; the contract says: {reason}") from exc
            raise

    def explain_revert(self, sender: str, data: str | bytes) -> str | None:
        """Re-run a failed call against the latest state and decode the contract's custom error."""
        try:
            self.chain.w3.eth.call(
                {"from": to_checksum_address(sender), "to": self.address, "data": HexBytes(data)}
            )
        except Exception as exc:  # web3 wraps revert data differently per provider
            return decode_custom_error(load_artifact()["abi"], _revert_data(exc)) or str(exc)
        return None

    # ---------------------------------------------------------------- transactions
    def register_clients(self, admin: LocalAccount, clients: list[str]) -> None:
        for i in range(0, len(clients), MAX_BATCH):
            chunk = clients[i : i + MAX_BATCH]
            self._send(
                admin,
                self.contract.functions.registerClients(chunk),
                gas=GAS_REGISTER[0] + GAS_REGISTER[1] * len(chunk),
                label="registerClients",
                round=None,
            )

    def open_round(
        self, aggregator: LocalAccount, *, round: int, base_model_hash: bytes, selected: list[str]
    ) -> None:
        self._send(
            aggregator,
            self.contract.functions.openRound(round, base_model_hash, pack_addresses(selected)),
            gas=GAS_OPEN[0] + GAS_OPEN[1] * len(selected),
            label="openRound",
            round=round,
        )

    def post_commitments(
        self, aggregator: LocalAccount, *, round: int, signed: list[SignedCommitment]
    ) -> list[CommitmentRecord]:
        """Post signed commitments; returns them as the chain recorded them (from the receipts)."""
        out: list[CommitmentRecord] = []
        for i in range(0, len(signed), MAX_BATCH):
            chunk = signed[i : i + MAX_BATCH]
            receipt = self._send(
                aggregator,
                self.contract.functions.postCommitments(round, pack_commitments(chunk)),
                gas=GAS_POST[0] + GAS_POST[1] * len(chunk),
                label="postCommitments",
                round=round,
            )
            for e in self.contract.events.CommitmentsPosted().process_receipt(receipt):
                a = e["args"]
                out += unpack_commitments(int(a["round"]), int(a["firstIndex"]), bytes(a["packed"]))
        return out

    def submit_commitment(
        self, client: LocalAccount, *, round: int, update_hash: bytes, num_samples: int
    ) -> CommitmentRecord:
        """A client records its own commitment (it needs a funded key)."""
        receipt = self._send(
            client,
            self.contract.functions.submitCommitment(round, update_hash, num_samples),
            gas=GAS_SUBMIT,
            label="submitCommitment",
            round=round,
        )
        (e,) = self.contract.events.CommitmentSubmitted().process_receipt(receipt)
        return _submitted_record(e["args"])

    def finalize_round(
        self,
        aggregator: LocalAccount,
        *,
        round: int,
        global_model_hash: bytes,
        outcomes: list[int],
        flagged: list[str],
    ) -> None:
        """``outcomes[i]`` is 0 when commitment i was used, else a rejection reason code (fedledger.protocol.outcomes)."""
        fn = self.contract.functions.finalizeRound(
            round, global_model_hash, bytes(outcomes), flagged
        )
        gas = GAS_FINALIZE[0] + GAS_FINALIZE[1] * len(outcomes) + GAS_FINALIZE[2] * len(flagged)
        self._send(aggregator, fn, gas=gas, label="finalizeRound", round=round)

    def select_committee(self, aggregator: LocalAccount, *, round: int, members: list[str]) -> None:
        self._send(
            aggregator,
            self.contract.functions.selectCommittee(round, pack_addresses(members)),
            gas=GAS_COMMITTEE[0] + GAS_COMMITTEE[1] * len(members),
            label="selectCommittee",
            round=round,
        )

    def post_votes(self, aggregator: LocalAccount, *, round: int, votes: list[SignedVote]) -> None:
        """Post signed votes; the contract checks each signature and tallies."""
        if not votes:
            return
        packed = b"".join(bytes(HexBytes(v.member)) + v.r + v.vs + v.accept for v in votes)
        n = len(votes[0].accept)
        self._send(
            aggregator,
            self.contract.functions.postVotes(round, packed),
            gas=GAS_VOTES[0] + len(votes) * (GAS_VOTES[1] + GAS_VOTES[2] * n),
            label="postVotes",
            round=round,
        )

    # ---------------------------------------------------------------- views
    def accept_votes(self, round: int) -> list[int]:
        return list(bytes(self.contract.functions.acceptVotes(round).call()))

    def current_model_hash(self) -> bytes:
        return bytes(self.contract.functions.currentModelHash().call())

    def config_hash(self) -> bytes:
        return bytes(self.contract.functions.configHash().call())

    def round_count(self) -> int:
        return int(self.contract.functions.roundCount().call())

    def round_info(self, round: int) -> dict[str, Any]:
        keys = (
            "open",
            "finalized",
            "num_selected",
            "num_commitments",
            "base_model_hash",
            "selected_digest",
            "commitments_digest",
            "global_model_hash",
            "committee_size",
            "num_votes",
        )
        return dict(zip(keys, self.contract.functions.roundInfo(round).call(), strict=True))

    def verify_commitment(self, rec: CommitmentRecord) -> bool:
        """The contract's own ECDSA check of a posted commitment (a call, no transaction)."""
        return bool(
            self.contract.functions.verifyCommitment(
                rec.round, rec.client, rec.update_hash, rec.num_samples, rec.r, rec.vs
            ).call()
        )

    def reputation_of(self, client: str) -> int:
        return int(self.contract.functions.reputationOf(client).call())

    def onchain_digest(self, round: int, update_hash: bytes, num_samples: int) -> bytes:
        return bytes(
            self.contract.functions.commitmentDigest(round, update_hash, num_samples).call()
        )

    # ---------------------------------------------------------------- events
    def _logs(self, event: str) -> list[Any]:
        try:
            return list(getattr(self.contract.events, event)().get_logs(from_block=0))
        except Exception as exc:  # node-specific errors
            raise LedgerError(f"cannot read {event} events from {self.address}: {exc}") from exc

    def ledger_created(self) -> dict[str, Any]:
        logs = self._logs("LedgerCreated")
        if len(logs) != 1:
            raise LedgerError(
                f"expected one LedgerCreated event at {self.address}, found {len(logs)}"
            )
        return dict(logs[0]["args"])

    def _per_round(self, event: str, value: Callable[[Any], T]) -> dict[int, T]:
        """``value(args)`` of each round's ``event`` (the last one, if a round has several)."""
        return {int(e["args"]["round"]): value(e["args"]) for e in self._logs(event)}

    def _grouped(self, event: str, value: Callable[[Any], T]) -> dict[int, list[T]]:
        """``value(args)`` of every ``event``, grouped by round in recorded order."""
        out: dict[int, list[T]] = {}
        for e in self._logs(event):
            out.setdefault(int(e["args"]["round"]), []).append(value(e["args"]))
        return out

    def rounds_opened(self) -> dict[int, dict[str, Any]]:
        return self._per_round(
            "RoundOpened",
            lambda a: {
                "base_model_hash": bytes(a["baseModelHash"]),
                "selected": unpack_addresses(bytes(a["selected"])),
            },
        )

    def commitments(self) -> dict[int, list[CommitmentRecord]]:
        """Every recorded commitment of every round, ordered by index."""
        out: dict[int, list[CommitmentRecord]] = {}
        for e in self._logs("CommitmentsPosted"):
            a = e["args"]
            rnd = int(a["round"])
            out.setdefault(rnd, []).extend(
                unpack_commitments(rnd, int(a["firstIndex"]), bytes(a["packed"]))
            )
        for e in self._logs("CommitmentSubmitted"):
            rec = _submitted_record(e["args"])
            out.setdefault(rec.round, []).append(rec)
        for recs in out.values():
            recs.sort(key=lambda c: c.index)
        return out

    def committees(self) -> dict[int, list[str]]:
        return self._per_round("CommitteeSelected", lambda a: unpack_addresses(bytes(a["members"])))

    def votes(self) -> dict[int, list[tuple[str, bytes]]]:
        """(member, accept bytes) per round, in recorded order."""
        return self._grouped(
            "VoteRecorded", lambda a: (to_checksum_address(a["member"]), bytes(a["accept"]))
        )

    def flags(self) -> dict[int, list[str]]:
        return self._grouped("ClientFlagged", lambda a: to_checksum_address(a["client"]))

    def rounds_finalized(self) -> dict[int, dict[str, Any]]:
        return self._per_round(
            "RoundFinalized",
            lambda a: {
                "global_model_hash": bytes(a["globalModelHash"]),
                "outcomes": list(bytes(a["outcomes"])),
            },
        )
