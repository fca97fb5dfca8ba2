"""Typed wrapper around the FedLedger contract: the only place that builds its transactions.

Batches are sized from the block gas limit (:func:`batch_size`), so that registering 10,000
clients or posting 1,000 commitments splits into as many transactions as the block needs.
Reverts come back as a :class:`LedgerError` naming the contract's custom error, decoded the
same way from the embedded chain and from a JSON-RPC node.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Literal, TypeVar

from eth_abi import decode, encode
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from hexbytes import HexBytes
from web3.contract import Contract

from fedledger.errors import LedgerError
from fedledger.ledger.chain import Chain
from fedledger.ledger.signing import SignedCommitment, SignedVote, domain_separator

# Gas per call: (base, per item), measured on py-evm (tests/test_contract.py checks the
# receipts stay below them). No eth_estimateGas round trip: it would execute every
# transaction twice on the embedded chain.
GAS_DEPLOY = 6_000_000
GAS_REGISTER = (60_000, 30_000)  # per client: one storage write and an event (~24.5k)
GAS_OPEN = (260_000, 1_200)  # per selected client; + one bitmap word per 256 indices
GAS_OPEN_WORD = 25_000
GAS_POST = (150_000, 10_000)  # per commitment: ecrecover, two bitmap reads, one write
GAS_POST_WORD = 25_000
GAS_SUBMIT = 150_000
GAS_FINALIZE = (200_000, 1_200, 60_000)  # base, per outcome, per flag
GAS_COMMITTEE = (110_000, 1_500, 25_000)  # base, per member, per bitmap word
GAS_VOTES = (100_000, 35_000, 900)  # base, per vote, per vote and commitment (+ tally words)
GAS_ABORT = 80_000
GAS_PROOF = (120_000, 2_200)  # base, per commitment of the batch (calldata and hashing)
PACKED_SIZE = 108
BLOCK_SHARE = 0.9  # the part of a block one of fedledger's transactions may fill

ABORTED, FINALIZED, OPEN = 3, 2, 1

T = TypeVar("T")


def batch_size(block_gas_limit: int, base: int, per_item: int) -> int:
    """How many items fit one transaction: floor((0.9 * block gas limit - base) / per item)."""
    n = (int(block_gas_limit * BLOCK_SHARE) - base) // per_item
    if n < 1:
        raise LedgerError(
            f"the block gas limit {block_gas_limit:,} is too small for one item ({base + per_item:,} gas)"
        )
    return n


def _finalize_gas(outcomes: Sequence[int], flagged: Sequence[int]) -> int:
    return GAS_FINALIZE[0] + GAS_FINALIZE[1] * len(outcomes) + GAS_FINALIZE[2] * len(flagged)


def _revert_data(exc: BaseException) -> bytes | None:
    """Revert data from a provider's exception: web3 keeps it in ``data`` (a hex string, or a
    dict on some nodes); eth-tester writes ``execution reverted: b"..."``; Hardhat says
    ``reverted with an unrecognized custom error (return data: 0x...)``."""
    data: Any = getattr(exc, "data", None)
    if isinstance(data, dict):
        data = data.get("data", data.get("result"))
    if isinstance(data, bytes) and data:
        return data
    if isinstance(data, str) and data.startswith("0x") and len(data) >= 10:
        return bytes(HexBytes(data))
    msg = " ".join(str(a) for a in exc.args)
    if 'reverted: b"' in msg or "reverted: b'" in msg:
        try:
            value = ast.literal_eval(msg.split("reverted: ", 1)[1].split("\n", 1)[0])
        except (ValueError, SyntaxError):
            value = None
        if isinstance(value, bytes):
            return value
    m = re.search(r"(?:return data|data)[:=]\s*['\"]?(0x[0-9a-fA-F]{8,})", msg)
    return bytes(HexBytes(m.group(1))) if m else None


def decode_custom_error(abi: list[dict[str, Any]], raw: bytes | None) -> str | None:
    """``<selector><args>`` -> ``Name(arg=value, ...)`` using the contract's custom errors."""
    if not raw or len(raw) < 4:
        return None
    for item in abi:
        if item.get("type") != "error":
            continue
        types = [_abi_type(i) for i in item["inputs"]]
        if keccak(text=f"{item['name']}({','.join(types)})")[:4] != raw[:4]:
            continue
        try:
            values = decode(types, raw[4:])
        except Exception:  # malformed arguments: name the error at least
            return f"{item['name']}(...)"
        args = ", ".join(
            f"{i['name']}={_show(v)}" for i, v in zip(item["inputs"], values, strict=True)
        )
        return f"{item['name']}({args})"
    if raw[:4] == keccak(text="Error(string)")[:4]:
        return f"Error({decode(['string'], raw[4:])[0]!r})"
    return None


def _abi_type(item: dict[str, Any]) -> str:
    if item["type"].startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in item["components"])
        return f"({inner}){item['type'][5:]}"
    return str(item["type"])


def _show(v: object) -> str:
    if isinstance(v, bytes):
        return "0x" + v.hex()
    return str(v)


@cache
def load_artifact(name: str = "FedLedger") -> dict[str, Any]:
    text = resources.files("fedledger.ledger").joinpath("artifacts", f"{name}.json").read_text()
    art: dict[str, Any] = json.loads(text)
    return art


@dataclass(frozen=True)
class LedgerParams:
    """The deployment parameters (the contract's ``Params`` struct)."""

    config_hash: bytes
    initial_model_hash: bytes
    selection_salt: bytes
    aggregator: str
    clients_per_round: int
    committee_size: int
    max_flags: int
    submission_window: int
    round_timeout: int

    def as_tuple(self) -> tuple[Any, ...]:
        return (
            self.config_hash,
            self.initial_model_hash,
            self.selection_salt,
            to_checksum_address(self.aggregator),
            self.clients_per_round,
            self.committee_size,
            self.max_flags,
            self.submission_window,
            self.round_timeout,
        )

    @classmethod
    def from_tuple(cls, t: Sequence[Any]) -> LedgerParams:
        return cls(
            config_hash=bytes(t[0]),
            initial_model_hash=bytes(t[1]),
            selection_salt=bytes(t[2]),
            aggregator=to_checksum_address(t[3]),
            clients_per_round=int(t[4]),
            committee_size=int(t[5]),
            max_flags=int(t[6]),
            submission_window=int(t[7]),
            round_timeout=int(t[8]),
        )


PARAMS_ABI = "(bytes32,bytes32,bytes32,address,uint32,uint32,uint32,uint64,uint64)"


@dataclass(frozen=True)
class CommitmentRecord:
    """One recorded commitment; ``index`` is its position in the round (the outcome order).

    ``source`` says which event recorded it: ``"posted"`` by the aggregator (with the client's
    signature, which the contract checked) or ``"submitted"`` by the client itself (the sender
    of that transaction; no signature needed)."""

    round: int
    index: int
    client: str
    update_hash: bytes
    num_samples: int
    source: Literal["posted", "submitted"]
    r: bytes = bytes(32)
    vs: bytes = bytes(32)
    batch: int = -1  # posted: the batch's number in the round, and the position in it
    position: int = -1


def pack_commitments(signed: Sequence[SignedCommitment], index_of: dict[str, int]) -> bytes:
    """clientIndex(4) | updateHash(32) | numSamples(8) | r(32) | vs(32) per commitment
    (big-endian integers; the client by its registration index)."""
    return b"".join(
        _pack_one(index_of[s.client], s.commitment.update_hash, s.commitment.num_samples, s.r, s.vs)
        for s in signed
    )


def _pack_one(index: int, update_hash: bytes, num_samples: int, r: bytes, vs: bytes) -> bytes:
    return index.to_bytes(4, "big") + update_hash + num_samples.to_bytes(8, "big") + r + vs


def pack_records(records: Sequence[CommitmentRecord], index_of: dict[str, int]) -> bytes:
    """The packed bytes of posted records (one batch, in order), as they were posted."""
    return b"".join(
        _pack_one(index_of[c.client], c.update_hash, c.num_samples, c.r, c.vs) for c in records
    )


def unpack_commitments(
    round: int, first_index: int, packed: bytes, clients: Sequence[str], *, batch: int = -1
) -> list[CommitmentRecord]:
    if len(packed) % PACKED_SIZE:
        raise LedgerError(f"packed commitments of round {round} have a ragged length {len(packed)}")
    out = []
    for k in range(len(packed) // PACKED_SIZE):
        b = packed[k * PACKED_SIZE : (k + 1) * PACKED_SIZE]
        idx = int.from_bytes(b[:4], "big")
        if idx >= len(clients):
            raise LedgerError(f"round {round}: a posted commitment names unknown client {idx}")
        out.append(
            CommitmentRecord(
                round=round,
                index=first_index + k,
                client=clients[idx],
                update_hash=b[4:36],
                num_samples=int.from_bytes(b[36:44], "big"),
                source="posted",
                r=b[44:76],
                vs=b[76:108],
                batch=batch,
                position=k,
            )
        )
    return out


def pack_votes(votes: Sequence[SignedVote]) -> bytes:
    return b"".join(bytes(HexBytes(v.member)) + v.r + v.vs + v.accept for v in votes)


def pack_addresses(addresses: Sequence[str]) -> bytes:
    return b"".join(bytes.fromhex(a[2:]) for a in addresses)


def pack_indices(indices: Sequence[int]) -> bytes:
    """4-byte big-endian registration indices, as finalizeRound takes the flagged clients."""
    return b"".join(int(i).to_bytes(4, "big") for i in indices)


def unpack_indices(packed: bytes) -> list[int]:
    return [int.from_bytes(packed[i : i + 4], "big") for i in range(0, len(packed), 4)]


def pack_bitmap(indices: Sequence[int]) -> bytes:
    """Registration indices as the contract's bitmap: 32-byte big-endian words, word w holding
    indices 256w..256w+255, index 256w + i in bit i."""
    if not indices:
        return b""
    words = [0] * (max(indices) // 256 + 1)
    for i in indices:
        words[i >> 8] |= 1 << (i & 255)
    return b"".join(w.to_bytes(32, "big") for w in words)


def unpack_bitmap(bitmap: bytes) -> list[int]:
    out = []
    for w in range(len(bitmap) // 32):
        v = int.from_bytes(bitmap[32 * w : 32 * w + 32], "big")
        base = 256 * w
        while v:
            low = v & -v
            out.append(base + low.bit_length() - 1)
            v ^= low
    return out


def digest_after_post(digest: bytes, packed: bytes) -> bytes:
    """The round's commitments digest after a postCommitments batch (as the contract does)."""
    return keccak(digest + keccak(packed))


def digest_after_submit(digest: bytes, client: str, update_hash: bytes, num_samples: int) -> bytes:
    """... after a client's own submitCommitment."""
    return keccak(digest + bytes(HexBytes(client)) + update_hash + num_samples.to_bytes(8, "big"))


def send_call(
    chain: Chain,
    abi: list[dict[str, Any]],
    address: str,
    account: LocalAccount,
    fn: Any,
    *,
    gas: int,
    label: str,
    round: int | None = None,
) -> dict[str, Any]:
    """Send contract call ``fn`` from ``account``; a revert is a LedgerError naming the
    contract's custom error (decoded from the provider's error, else from re-running it)."""
    data = fn._encode_transaction_data()
    try:
        return chain.send(
            account, {"to": address, "data": data, "value": 0}, gas=gas, label=label, round=round
        )
    except LedgerError as exc:
        reason = decode_custom_error(abi, _revert_data(exc.__cause__ or exc))
        if reason is None:
            reason = explain_revert(chain, abi, address, account.address, data)
        if reason:
            raise LedgerError(
                f"transaction {label!r} (round {round}) was refused: {reason}"
            ) from exc
        raise


def explain_revert(
    chain: Chain, abi: list[dict[str, Any]], address: str, sender: str, data: str | bytes
) -> str | None:
    """Re-run a failed call against the latest state and decode the contract's custom error."""
    try:
        chain.w3.eth.call(
            {"from": to_checksum_address(sender), "to": address, "data": HexBytes(data)}
        )
    except Exception as exc:  # web3 wraps revert data differently per provider
        return decode_custom_error(abi, _revert_data(exc)) or str(exc)
    return None


def deploy_artifact(
    chain: Chain, account: LocalAccount, name: str, args: bytes, *, gas: int, label: str
) -> str:
    """Deploy artifact ``name`` with ABI-encoded constructor arguments ``args``; its address."""
    art = load_artifact(name)
    try:
        receipt = chain.send(
            account, {"data": art["bytecode"] + args.hex(), "value": 0}, gas=gas, label=label
        )
    except LedgerError as exc:
        reason = decode_custom_error(art["abi"], _revert_data(exc.__cause__ or exc))
        raise LedgerError(f"{exc}; the contract says: {reason}" if reason else str(exc)) from exc
    return str(receipt["contractAddress"])


class FedLedgerContract:
    """Methods named after the contract's; each state change is one logged transaction."""

    def __init__(self, chain: Chain, address: str) -> None:
        self.chain = chain
        self.abi: list[dict[str, Any]] = load_artifact()["abi"]
        self.address = to_checksum_address(address)
        self.contract: Contract = chain.w3.eth.contract(address=self.address, abi=self.abi)
        self.domain = domain_separator(chain_id=chain.chain_id, contract=self.address)
        self._events: dict[str, list[Any]] | None = None  # decoded events, read once
        self._clients: list[str] | None = None  # registration order, read from the events once
        self._index: dict[str, int] = {}

    @property
    def clients(self) -> list[str]:
        """Registered clients in registration order."""
        if self._clients is None:
            self._clients = [c for _, c in self.registrations()]
            self._index = {c: i for i, c in enumerate(self._clients)}
        return self._clients

    def index_of(self, client: str) -> int:
        _ = self.clients
        if client not in self._index:
            raise LedgerError(f"{client} is not a registered client of {self.address}")
        return self._index[client]

    @classmethod
    def deploy(
        cls, chain: Chain, *, admin: LocalAccount, params: LedgerParams
    ) -> FedLedgerContract:
        args = encode([PARAMS_ABI], [params.as_tuple()])
        address = deploy_artifact(chain, admin, "FedLedger", args, gas=GAS_DEPLOY, label="deploy")
        return cls(chain, address)

    def _send(
        self, account: LocalAccount, fn: Any, *, gas: int, label: str, round: int | None
    ) -> dict[str, Any]:
        self._events = None  # our own transaction may add events
        return send_call(
            self.chain, self.abi, self.address, account, fn, gas=gas, label=label, round=round
        )

    def explain_revert(self, sender: str, data: str | bytes) -> str | None:
        """Re-run a failed call against the latest state and decode the contract's custom error."""
        return explain_revert(self.chain, self.abi, self.address, sender, data)

    def _gas_limit(self) -> int:
        return self.chain.block_gas_limit

    # ---------------------------------------------------------------- transactions
    def register_clients(self, admin: LocalAccount, clients: Sequence[str]) -> int:
        """Register in as many transactions as the block gas limit needs; returns their number."""
        size = batch_size(self._gas_limit(), *GAS_REGISTER)
        known = self.clients
        sent = 0
        for i in range(0, len(clients), size):
            chunk = [to_checksum_address(c) for c in clients[i : i + size]]
            self._send(
                admin,
                self.contract.functions.registerClients(pack_addresses(chunk)),
                gas=GAS_REGISTER[0] + GAS_REGISTER[1] * len(chunk),
                label="registerClients",
                round=None,
            )
            for c in chunk:
                self._index[c] = len(known)
                known.append(c)
            sent += 1
        return sent

    def open_round(
        self,
        aggregator: LocalAccount,
        *,
        round: int,
        base_model_hash: bytes,
        selected: Sequence[int],
        signed: Sequence[SignedCommitment] = (),
    ) -> list[CommitmentRecord]:
        """Open a round for ``selected`` (registration indices); with ``signed``, post its
        first batch of commitments in the same transaction. Returns the posted records."""
        first, rest, packed, gas = self._opening(selected, signed)
        self._send(
            aggregator,
            self.contract.functions.openRound(
                round, base_model_hash, pack_bitmap(selected), packed
            ),
            gas=min(gas, int(self._gas_limit() * BLOCK_SHARE)),
            label="openRound",
            round=round,
        )
        return self._opened(aggregator, round, first, rest, packed)

    def finalize_and_open(
        self,
        aggregator: LocalAccount,
        *,
        round: int,
        global_model_hash: bytes,
        outcomes: Sequence[int],
        flagged: Sequence[int],
        selected: Sequence[int],
        signed: Sequence[SignedCommitment] = (),
    ) -> list[CommitmentRecord]:
        """Finalize ``round`` (see :meth:`finalize_round`) and open ``round + 1`` on
        ``global_model_hash`` (see :meth:`open_round`) in one transaction, labelled
        "finalizeAndOpen" with the round it finalizes. Returns the new round's posted records."""
        closing = _finalize_gas(outcomes, flagged)
        first, rest, packed, gas = self._opening(selected, signed, extra_gas=closing)
        gas += closing
        self._send(
            aggregator,
            self.contract.functions.finalizeAndOpen(
                round,
                global_model_hash,
                bytes(outcomes),
                pack_indices(flagged),
                pack_bitmap(selected),
                packed,
            ),
            gas=min(gas, int(self._gas_limit() * BLOCK_SHARE)),
            label="finalizeAndOpen",
            round=round,
        )
        return self._opened(aggregator, round + 1, first, rest, packed)

    def _opening(
        self, selected: Sequence[int], signed: Sequence[SignedCommitment], *, extra_gas: int = 0
    ) -> tuple[list[SignedCommitment], list[SignedCommitment], bytes, int]:
        """(first batch, the rest, the first batch packed, gas of opening with it), leaving
        ``extra_gas`` of the transaction to other work."""
        words = len({i >> 8 for i in selected})
        size = self._post_batch_size(extra_gas)
        first, rest = list(signed[:size]), list(signed[size:])
        packed = pack_commitments(first, self._index_map()) if first else b""
        gas = GAS_OPEN[0] + GAS_OPEN[1] * len(selected) + GAS_OPEN_WORD * words
        if first:
            gas += self._post_gas(first)
        return first, rest, packed, gas

    def _opened(
        self,
        aggregator: LocalAccount,
        round: int,
        first: list[SignedCommitment],
        rest: list[SignedCommitment],
        packed: bytes,
    ) -> list[CommitmentRecord]:
        out = unpack_commitments(round, 0, packed, self.clients, batch=0) if first else []
        if rest:
            out += self.post_commitments(
                aggregator, round=round, signed=rest, first=(1, len(first))
            )
        return out

    def _index_map(self) -> dict[str, int]:
        _ = self.clients
        return self._index

    def _post_batch_size(self, extra_gas: int = 0) -> int:
        return batch_size(
            self._gas_limit(),
            GAS_OPEN[0] + GAS_POST[0] + 16 * GAS_POST_WORD + extra_gas,
            GAS_POST[1],
        )

    def _post_gas(self, chunk: Sequence[SignedCommitment]) -> int:
        words = len({self._index[c.client] >> 8 for c in chunk})  # bitmap words touched
        return GAS_POST[0] + GAS_POST[1] * len(chunk) + GAS_POST_WORD * min(words, 16)

    def post_commitments(
        self,
        aggregator: LocalAccount,
        *,
        round: int,
        signed: Sequence[SignedCommitment],
        first: tuple[int, int] | None = None,
    ) -> list[CommitmentRecord]:
        """Post signed commitments (ascending client order); returns them as the chain recorded
        them. ``first``: (batch number, commitment index) the batch starts at, when the caller
        knows it (else read from the chain)."""
        out: list[CommitmentRecord] = []
        size = self._post_batch_size()
        if not signed:
            return out
        if first is None:
            info = self.round_info(round)
            first = (int(info["num_batches"]), int(info["num_commitments"]))
        batch, index = first
        clients = self.clients
        for i in range(0, len(signed), size):
            chunk = signed[i : i + size]
            gas = self._post_gas(chunk)
            packed = pack_commitments(chunk, self._index)
            self._send(
                aggregator,
                self.contract.functions.postCommitments(round, packed),
                gas=min(gas, int(self._gas_limit() * BLOCK_SHARE)),
                label="postCommitments",
                round=round,
            )
            # the transaction succeeded, so the contract emitted exactly these bytes
            out += unpack_commitments(round, index, packed, clients, batch=batch)
            index += len(chunk)
            batch += 1
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

    def select_committee(
        self, aggregator: LocalAccount, *, round: int, members: Sequence[int]
    ) -> None:
        words = len({i >> 8 for i in members})
        self._send(
            aggregator,
            self.contract.functions.selectCommittee(round, pack_bitmap(members)),
            gas=GAS_COMMITTEE[0] + GAS_COMMITTEE[1] * len(members) + GAS_COMMITTEE[2] * words,
            label="selectCommittee",
            round=round,
        )

    def post_votes(
        self, aggregator: LocalAccount, *, round: int, votes: Sequence[SignedVote]
    ) -> None:
        """Relay signed votes; the contract checks each signature and tallies."""
        if not votes:
            return
        n = len(votes[0].accept)
        tally_words = n // 32 + 1
        self._send(
            aggregator,
            self.contract.functions.postVotes(round, pack_votes(votes)),
            gas=GAS_VOTES[0]
            + len(votes) * (GAS_VOTES[1] + GAS_VOTES[2] * n)
            + 25_000 * tally_words,
            label="postVotes",
            round=round,
        )

    def finalize_round(
        self,
        aggregator: LocalAccount,
        *,
        round: int,
        global_model_hash: bytes,
        outcomes: Sequence[int],
        flagged: Sequence[int],
    ) -> None:
        """``outcomes[i]`` is 0 when commitment i entered the rule, else a rejection code
        (fedledger.protocol.outcomes); ``flagged``: registration indices, ascending."""
        fn = self.contract.functions.finalizeRound(
            round, global_model_hash, bytes(outcomes), pack_indices(flagged)
        )
        self._send(
            aggregator, fn, gas=_finalize_gas(outcomes, flagged), label="finalizeRound", round=round
        )

    def prove_bad_signature(
        self,
        account: LocalAccount,
        *,
        round: int,
        batch: int,
        position: int,
        packed: bytes,
        client: str,
    ) -> None:
        """Anyone proves that a posted commitment's signature is not its client's."""
        self._send(
            account,
            self.contract.functions.proveBadSignature(round, batch, position, packed, client),
            gas=GAS_PROOF[0] + GAS_PROOF[1] * (len(packed) // PACKED_SIZE),
            label="proveBadSignature",
            round=round,
        )

    def halted_by(self) -> int | None:
        """The fraudulent round that halted the ledger, or None."""
        h = int(self.contract.functions.haltedBy().call())
        return h - 1 if h else None

    def abort_round(self, account: LocalAccount, *, round: int) -> None:
        """Anyone may abort a round that outlived its deadline."""
        self._send(
            account,
            self.contract.functions.abortRound(round),
            gas=GAS_ABORT,
            label="abortRound",
            round=round,
        )

    # ---------------------------------------------------------------- views
    def params(self) -> LedgerParams:
        return LedgerParams.from_tuple(self.contract.functions.params().call())

    def accept_votes(self, round: int) -> list[int]:
        return list(bytes(self.contract.functions.acceptVotes(round).call()))

    def current_model_hash(self) -> bytes:
        return bytes(self.contract.functions.currentModelHash().call())

    def config_hash(self) -> bytes:
        return bytes(self.contract.functions.configHash().call())

    def round_count(self) -> int:
        return int(self.contract.functions.roundCount().call())

    def client_count(self) -> int:
        return int(self.contract.functions.clientCount().call())

    def round_info(self, round: int) -> dict[str, Any]:
        keys = (
            "status",
            "num_selected",
            "num_commitments",
            "committee_size",
            "num_votes",
            "num_batches",
            "fraudulent",
            "opened_at",
            "window_end",
            "base_model_hash",
            "selection_seed",
            "commitments_digest",
            "global_model_hash",
        )
        values = self.contract.functions.roundInfo(round).call()
        info = dict(zip(keys, values, strict=True))
        for k in ("base_model_hash", "selection_seed", "commitments_digest", "global_model_hash"):
            info[k] = bytes(info[k])
        return info

    def selection_seed(self, round: int, base_model_hash: bytes) -> bytes:
        return bytes(self.contract.functions.selectionSeed(round, base_model_hash).call())

    def verify_commitment(self, rec: CommitmentRecord) -> bool:
        """The contract's own ECDSA check of a posted commitment (a call, no transaction)."""
        return bool(
            self.contract.functions.verifyCommitment(
                rec.round, rec.client, rec.update_hash, rec.num_samples, rec.r, rec.vs
            ).call()
        )

    def flags_of(self, client: str) -> int:
        return int(self.contract.functions.flagsOf(client).call())

    def reputation_of(self, client: str) -> int:
        return int(self.contract.functions.reputationOf(client).call())

    def is_excluded(self, client: str) -> bool:
        return bool(self.contract.functions.isExcluded(client).call())

    def has_role(self, role: bytes, account: str) -> bool:
        return bool(self.contract.functions.hasRole(role, account).call())

    # ---------------------------------------------------------------- events
    def use_logs(self, logs: Sequence[Any]) -> None:
        """Read events from these raw logs (e.g. the receipts of a replay) instead of asking
        the node; one pass decodes every event of the contract."""
        topics = {
            keccak(text=f"{e['name']}({','.join(_abi_type(i) for i in e['inputs'])})"): e["name"]
            for e in self.abi
            if e.get("type") == "event"
        }
        cache: dict[str, list[Any]] = {name: [] for name in topics.values()}
        mine = [lg for lg in logs if to_checksum_address(lg["address"]) == self.address]
        mine.sort(key=lambda lg: (int(lg["blockNumber"]), int(lg["logIndex"])))
        for lg in mine:
            name = topics.get(bytes(lg["topics"][0])) if lg["topics"] else None
            if name is not None:
                cache[name].append(getattr(self.contract.events, name)().process_log(lg))
        self._events = cache

    def _logs(self, event: str) -> list[Any]:
        if self._events is None:
            try:
                logs = self.chain.w3.eth.get_logs(
                    {"address": self.address, "fromBlock": 0, "toBlock": "latest"}
                )
            except Exception as exc:  # node-specific errors
                raise LedgerError(f"cannot read the events of {self.address}: {exc}") from exc
            self.use_logs(logs)
        assert self._events is not None
        return self._events.get(event, [])

    def forget_events(self) -> None:
        """Read events afresh next time (after new transactions)."""
        self._events = None

    def ledger_created(self) -> dict[str, Any]:
        logs = self._logs("LedgerCreated")
        if len(logs) != 1:
            raise LedgerError(
                f"expected one LedgerCreated event at {self.address}, found {len(logs)}"
            )
        return dict(logs[0]["args"])

    def role_events(self) -> list[tuple[str, bytes, str]]:
        """("granted" | "revoked", role, account) in chain order."""
        out: list[tuple[int, int, str, bytes, str]] = []
        for kind, event in (("granted", "RoleGranted"), ("revoked", "RoleRevoked")):
            for e in self._logs(event):
                out.append(
                    (
                        int(e["blockNumber"]),
                        int(e["logIndex"]),
                        kind,
                        bytes(e["args"]["role"]),
                        to_checksum_address(e["args"]["account"]),
                    )
                )
        return [(k, r, a) for _, _, k, r, a in sorted(out)]

    def registrations(self) -> list[tuple[int, str]]:
        """(index, client) of every ClientRegistered event, in chain order."""
        return [
            (int(e["args"]["index"]), to_checksum_address(e["args"]["client"]))
            for e in self._logs("ClientRegistered")
        ]

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
                "selection_seed": bytes(a["selectionSeed"]),
                "selected": unpack_bitmap(bytes(a["selected"])),
            },
        )

    def commitments(self) -> dict[int, list[CommitmentRecord]]:
        """Every recorded commitment of every round, ordered by index; each with its source."""
        out: dict[int, list[CommitmentRecord]] = {}
        batches: dict[int, int] = {}
        for e in self._logs("CommitmentsPosted"):
            a = e["args"]
            rnd = int(a["round"])
            batches[rnd] = batches.get(rnd, -1) + 1
            out.setdefault(rnd, []).extend(
                unpack_commitments(
                    rnd, int(a["firstIndex"]), bytes(a["packed"]), self.clients, batch=batches[rnd]
                )
            )
        for e in self._logs("CommitmentSubmitted"):
            rec = _submitted_record(e["args"])
            out.setdefault(rec.round, []).append(rec)
        for recs in out.values():
            recs.sort(key=lambda c: c.index)
        return out

    def committees(self) -> dict[int, list[int]]:
        return self._per_round("CommitteeSelected", lambda a: unpack_bitmap(bytes(a["members"])))

    def votes(self) -> dict[int, list[tuple[str, bytes, bytes, bytes]]]:
        """(member, accept bytes, r, vs) per round, in recorded order."""
        return self._grouped(
            "VoteRecorded",
            lambda a: (
                to_checksum_address(a["member"]),
                bytes(a["accept"]),
                bytes(a["r"]),
                bytes(a["vs"]),
            ),
        )

    def flags(self) -> dict[int, list[int]]:
        """Flagged clients (registration indices) per round, in recorded order."""
        return self._grouped("ClientFlagged", lambda a: int(a["client"]))

    def exclusions(self) -> dict[int, list[int]]:
        return self._grouped("ClientExcluded", lambda a: int(a["client"]))

    def rounds_finalized(self) -> dict[int, dict[str, Any]]:
        return self._per_round(
            "RoundFinalized",
            lambda a: {
                "global_model_hash": bytes(a["globalModelHash"]),
                "outcomes": list(bytes(a["outcomes"])),
            },
        )

    def rounds_aborted(self) -> dict[int, str]:
        return self._per_round("RoundAborted", lambda a: to_checksum_address(a["by"]))

    def frauds(self) -> dict[int, list[tuple[int, int, int]]]:
        """(batch, position, client index) of every proven forgery, per round."""
        return self._grouped(
            "FraudProven", lambda a: (int(a["batch"]), int(a["position"]), int(a["client"]))
        )


def _submitted_record(a: Any) -> CommitmentRecord:
    return CommitmentRecord(
        round=int(a["round"]),
        index=int(a["index"]),
        client=to_checksum_address(a["client"]),
        update_hash=bytes(a["updateHash"]),
        num_samples=int(a["numSamples"]),
        source="submitted",
    )
