"""The connection to an Ethereum chain: an embedded py-evm chain (eth-tester) or any JSON-RPC node.

Every transaction fedledger sends is signed locally and recorded (raw bytes, hash, gas, block,
label, round) in a :class:`TxLog`, written line by line to ``transactions.jsonl`` in the run
directory, so that the embedded chain can be replayed from its genesis after the process ends.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import Web3Exception
from web3.types import Wei

from fedledger.errors import LedgerError
from fedledger.ledger.embedded import EMBEDDED_CHAIN_ID, embedded_web3

GWEI = 10**9
ETHER = 10**18
MAX_FEE_PER_GAS = 50 * GWEI
PRIORITY_FEE = 1
DEFAULT_GAS_LIMIT = 30_000_000


@dataclass(frozen=True)
class TxRecord:
    """One transaction as sent: enough to replay it and to say what it was for."""

    label: str
    round: int | None
    tx_hash: str
    raw: str
    sender: str
    gas_used: int
    block: int
    status: int

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @property
    def is_mining(self) -> bool:
        """A marker that empty blocks were mined up to ``block`` (no transaction)."""
        return self.label == MINE_LABEL


MINE_LABEL = "mineBlocks"
_FIELDS = {
    "label": str,
    "tx_hash": str,
    "raw": str,
    "sender": str,
    "gas_used": int,
    "block": int,
    "status": int,
}


class TxLog:
    """Append-only record of transactions, mirrored line by line to a JSONL file."""

    def __init__(self, path: Path | None = None) -> None:
        self.records: list[TxRecord] = []
        self.gas_used = 0
        self.tx_count = 0  # real transactions (mining markers excluded)
        self._fh: TextIO | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = path.open("a", encoding="utf-8")

    def append(self, rec: TxRecord) -> None:
        self.records.append(rec)
        self.gas_used += rec.gas_used
        self.tx_count += 0 if rec.is_mining else 1
        if self._fh is not None:
            self._fh.write(rec.to_json() + "\n")
            self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __len__(self) -> int:
        return self.tx_count

    @classmethod
    def continued(cls, path: Path, records: Iterable[TxRecord]) -> TxLog:
        """A log that holds ``records`` (an interrupted run's, up to where it goes on): the
        file is replaced by them (atomically) and further records are appended to it."""
        log = cls()
        for rec in records:
            log.append(rec)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text("".join(r.to_json() + "\n" for r in log.records), encoding="utf-8")
        tmp.replace(path)
        log._fh = path.open("a", encoding="utf-8")
        return log

    @staticmethod
    def read(path: Path, *, complete_lines_only: bool = False) -> list[TxRecord]:
        """The records of a ``transactions.jsonl``; a LedgerError names the first bad line.
        ``complete_lines_only``: a last line without its newline (a run killed while writing
        it) is left out rather than an error."""
        if not path.exists():
            raise LedgerError(
                f"no transaction log at {path}; was this run made with the ledger on?"
            )
        out = []
        with path.open("rb") as fh:
            for n, raw in enumerate(fh, 1):
                if complete_lines_only and not raw.endswith(b"\n"):
                    break
                if raw.strip():
                    out.append(_parse_record(raw, where=f"{path}:{n}"))
        return out


def _parse_record(raw: bytes, *, where: str) -> TxRecord:
    try:
        obj = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LedgerError(f"{where}: not a transaction record (not JSON: {exc})") from None
    if not isinstance(obj, dict) or set(obj) != {*_FIELDS, "round"}:
        raise LedgerError(
            f"{where}: not a transaction record (expected the keys {sorted({*_FIELDS, 'round'})})"
        )
    for key, typ in _FIELDS.items():
        if not isinstance(obj[key], typ) or isinstance(obj[key], bool):
            raise LedgerError(f"{where}: field {key!r} should be {typ.__name__}, got {obj[key]!r}")
    if obj["round"] is not None and not isinstance(obj["round"], int):
        raise LedgerError(f"{where}: field 'round' should be an integer or null")
    return TxRecord(**obj)


class Chain:
    """A web3 connection plus nonce tracking and the transaction log."""

    def __init__(self, w3: Web3, *, embedded: bool, genesis: dict[str, Any] | None = None) -> None:
        self.w3 = w3
        self.embedded = embedded
        self.genesis = genesis
        self.chain_id = int(w3.eth.chain_id)
        if genesis and genesis.get("funded"):
            # calls (views) need a funded sender on eth-tester
            w3.eth.default_account = genesis["funded"][0]
        self.log = TxLog()
        self._nonces: dict[str, int] = {}
        block = w3.eth.get_block("latest")
        self.block_gas_limit = int(block["gasLimit"])

    # ---------------------------------------------------------------- constructors
    @classmethod
    def embedded_chain(
        cls,
        *,
        funded: Iterable[str],
        gas_limit: int = DEFAULT_GAS_LIMIT,
        nonces: dict[str, int] | None = None,
    ) -> Chain:
        """A fresh in-process py-evm chain whose genesis funds the given addresses.

        ``nonces`` sets accounts' starting nonces: a random one for the deployer makes the
        contract's address (and so every EIP-712 domain) unique to the run, even though every
        embedded chain starts from the same genesis block."""
        genesis = {
            "funded": sorted(to_checksum_address(a) for a in funded),
            "gas_limit": gas_limit,
            "nonces": {to_checksum_address(a): int(n) for a, n in (nonces or {}).items()},
        }
        return cls.from_genesis(genesis)

    @classmethod
    def from_genesis(cls, genesis: dict[str, Any]) -> Chain:
        """Re-create the embedded chain of a finished run from its recorded genesis."""
        chain = cls(embedded_web3(genesis), embedded=True, genesis=genesis)
        if chain.chain_id != EMBEDDED_CHAIN_ID:
            raise LedgerError(
                f"the embedded chain's id is {chain.chain_id}, not {EMBEDDED_CHAIN_ID}: "
                "eth-tester changed; update fedledger.ledger.embedded.EMBEDDED_CHAIN_ID"
            )
        return chain

    def close(self) -> None:
        self.log.close()

    @classmethod
    def from_url(cls, url: str, *, fund: Iterable[str] = ()) -> Chain:
        """Connect to a JSON-RPC node; fund the given accounts from the node's first unlocked one."""
        w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 60}))
        try:
            connected = w3.is_connected()
        except Exception:  # the provider's own errors vary by transport
            connected = False
        if not connected:
            scheme = "" if "://" in url else " (a node's URL starts with http:// or https://)"
            raise LedgerError(
                f"cannot reach an Ethereum JSON-RPC node at {url}{scheme}; start one (e.g. "
                '`npx hardhat node`), or use the embedded chain: ledger.url = "" for a run, '
                "no --url for an audit"
            )
        chain = cls(w3, embedded=False)
        to_fund = [a for a in fund if w3.eth.get_balance(to_checksum_address(a)) < ETHER]
        if to_fund:
            accounts = w3.eth.accounts
            if not accounts:
                raise LedgerError(
                    f"the node at {url} has no unlocked account to fund fedledger's keys; "
                    "fund the aggregator and deployer addresses yourself"
                )
            for a in to_fund:
                h = w3.eth.send_transaction(
                    {"from": accounts[0], "to": to_checksum_address(a), "value": Wei(1000 * ETHER)}
                )
                w3.eth.wait_for_transaction_receipt(h)
        return chain

    @property
    def block_number(self) -> int:
        if self.embedded:  # straight from py-evm: web3's eth_blockNumber serialises a block
            tester = self.w3.provider.ethereum_tester  # type: ignore[attr-defined]
            return int(tester.backend.chain.get_canonical_head().block_number)
        return int(self.w3.eth.block_number)

    def mine_to(self, block: int, *, round: int | None = None) -> None:
        """Let the chain reach block number ``block`` (mining empty blocks on the embedded
        chain or a development node), and log it so that a replay reaches it too."""
        missing = block - self.block_number
        if missing <= 0:
            return
        if self.embedded:
            self.w3.provider.ethereum_tester.mine_blocks(missing)  # type: ignore[attr-defined]
        else:
            self._mine_node(missing)
        self.log.append(
            TxRecord(
                label=MINE_LABEL,
                round=round,
                tx_hash="",
                raw="",
                sender="",
                gas_used=0,
                block=self.block_number,
                status=1,
            )
        )

    def _mine_node(self, n: int) -> None:
        """Development nodes mine on request (Hardhat, Anvil: one call for n blocks; others:
        evm_mine); a production node is waited for."""
        for method, params in (("hardhat_mine", [hex(n)]), ("anvil_mine", [hex(n)])):
            resp = self.w3.provider.make_request(method, params)  # type: ignore[arg-type]
            if "error" not in resp:
                return
        target = self.block_number + n
        for _ in range(n):
            if "error" in self.w3.provider.make_request("evm_mine", []):  # type: ignore[arg-type]
                break
        while self.block_number < target:  # a production chain: wait for its blocks
            time.sleep(1.0)

    # ---------------------------------------------------------------- sending
    def send(
        self,
        account: LocalAccount,
        tx: dict[str, Any],
        *,
        gas: int,
        label: str,
        round: int | None = None,
    ) -> dict[str, Any]:
        """Sign ``tx`` (to/data/value) with ``account``, send it, wait for its receipt, log it."""
        sender = account.address
        if sender not in self._nonces:
            self._nonces[sender] = int(self.w3.eth.get_transaction_count(sender, "pending"))
        full = {
            **tx,
            "chainId": self.chain_id,
            "nonce": self._nonces[sender],
            "gas": min(gas, self.block_gas_limit),
            "maxFeePerGas": MAX_FEE_PER_GAS,
            "maxPriorityFeePerGas": PRIORITY_FEE,
            "type": 2,
        }
        signed = account.sign_transaction(full)
        raw = HexBytes(signed.raw_transaction)
        try:
            tx_hash = self.w3.eth.send_raw_transaction(raw)
            receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120)
        except (Web3Exception, ValueError) as exc:
            # eth-tester executes on send and raises on a revert without using the nonce; a node
            # such as Hardhat may mine the reverted transaction: ask it for the nonce next time
            if not self.embedded:
                self._nonces.pop(sender, None)
            raise LedgerError(f"transaction {label!r} (round {round}) failed: {exc}") from exc
        self._nonces[sender] += 1
        rec = TxRecord(
            label=label,
            round=round,
            tx_hash=HexBytes(tx_hash).to_0x_hex(),
            raw=raw.to_0x_hex(),
            sender=sender,
            gas_used=int(receipt["gasUsed"]),
            block=int(receipt["blockNumber"]),
            status=int(receipt["status"]),
        )
        self.log.append(rec)
        if rec.status != 1:
            oog = rec.gas_used >= full["gas"]
            raise LedgerError(
                f"transaction {label!r} (round {round}) "
                + (f"ran out of gas ({full['gas']})" if oog else "reverted")
                + f" in block {rec.block}: {rec.tx_hash}"
            )
        return dict(receipt)

    def replay(self, records: Iterable[TxRecord]) -> Iterator[tuple[TxRecord, dict[str, Any]]]:
        """Send recorded raw transactions again, in order; yield each with its receipt (an
        empty dict for a mining marker).

        Raises LedgerError naming the transaction's label and round when it cannot be sent or
        when its outcome (success or revert) differs from the recorded one.
        """
        for k, rec in enumerate(records):
            where = f"transaction {k} ({rec.label!r}, round {rec.round})"
            if rec.is_mining:
                if self.block_number > rec.block:
                    raise LedgerError(f"replaying {where}: the chain is past block {rec.block}")
                self.mine_to(rec.block)
                yield rec, {}
                continue
            try:
                h = self.w3.eth.send_raw_transaction(HexBytes(rec.raw))
                receipt = self.w3.eth.wait_for_transaction_receipt(h, timeout=120)
            except (Web3Exception, ValueError) as exc:
                raise LedgerError(f"replaying {where} failed: {exc}") from exc
            if int(receipt["status"]) != rec.status:
                raise LedgerError(
                    f"replaying {where}: it {'succeeded' if receipt['status'] else 'reverted'} "
                    f"but the run recorded status {rec.status}"
                )
            if int(receipt["gasUsed"]) != rec.gas_used:
                raise LedgerError(
                    f"replaying {where}: it used {receipt['gasUsed']} gas, but the run "
                    f"recorded {rec.gas_used}"
                )
            new_hash = HexBytes(h).to_0x_hex()
            if new_hash != rec.tx_hash:
                raise LedgerError(
                    f"replaying {where}: hash {new_hash} differs from the recorded {rec.tx_hash}"
                )
            yield rec, dict(receipt)
