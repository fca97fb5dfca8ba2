"""Tools of a hostile party with write access to a run directory: rewrite its own transactions
(re-signed with its key, which a simulated run derives from the seed) into a log that replays
cleanly, so that only the audit's checks stand between the forgery and the reader."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import tomllib
from eth_account.signers.local import LocalAccount
from eth_account.typed_transactions import TypedTransaction
from hexbytes import HexBytes
from web3 import Web3

from fedledger.errors import LedgerError
from fedledger.ledger.chain import Chain, TxRecord
from fedledger.ledger.contract import load_artifact
from fedledger.ledger.deployment import Deployment
from fedledger.ledger.keys import derive_account

Mutate = Callable[[TxRecord, dict[str, Any]], "dict[str, Any] | None"]


def run_accounts(run: Path) -> dict[str, LocalAccount]:
    """The simulated keys of a run's parties, by address (anyone who has config.toml)."""
    seed = tomllib.loads((run / "config.toml").read_text())["seed"]
    dep = Deployment.load(run / "ledger/deployment.json")
    accts = [
        derive_account(seed=seed, role="deployer"),
        derive_account(seed=seed, role="aggregator"),
    ]
    accts += [derive_account(seed=seed, role="client", index=i) for i in range(len(dep.clients))]
    return {a.address: a for a in accts}


def forge_log(run: Path, mutate: Mutate) -> None:
    """Rewrite the run's transactions: ``mutate(record, args)`` returns new arguments for the
    contract call (or None to keep it); changed transactions are re-signed by their sender and
    the whole log is re-executed from the genesis so that gas, blocks and hashes stay
    consistent. Raises LedgerError if the contract refuses the forged transaction."""
    path = run / "ledger/transactions.jsonl"
    dep = Deployment.load(run / "ledger/deployment.json")
    keys = run_accounts(run)
    contract = Web3().eth.contract(abi=load_artifact()["abi"])
    lines = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    for rec in lines:
        if not rec["raw"] or rec["label"] == "deploy":
            continue
        tx = dict(TypedTransaction.from_bytes(HexBytes(rec["raw"])).as_dict())
        if "data" not in tx or not tx["data"]:
            continue
        fn, args = contract.decode_function_input(tx["data"])
        new = mutate(TxRecord(**rec), dict(args))
        if new is None:
            continue
        tx["data"] = contract.encode_abi(fn.fn_name, args=list(new.values()))
        for key in ("hash", "v", "r", "s", "y_parity", "yParity", "type"):
            tx.pop(key, None)
        tx["type"] = 2
        tx["gas"] = max(int(tx["gas"]), 3_000_000)
        signed = keys[rec["sender"]].sign_transaction(tx)
        rec["raw"] = HexBytes(signed.raw_transaction).to_0x_hex()
    chain = Chain.from_genesis(dep.genesis or {})
    for rec in lines:
        if not rec["raw"]:
            chain.mine_to(rec["block"])
            continue
        try:
            h = chain.w3.eth.send_raw_transaction(HexBytes(rec["raw"]))
        except Exception as exc:  # eth-tester raises on a revert
            raise LedgerError(f"the contract refused the forged {rec['label']}: {exc}") from exc
        receipt = chain.w3.eth.wait_for_transaction_receipt(h)
        rec.update(
            tx_hash=HexBytes(h).to_0x_hex(),
            gas_used=int(receipt["gasUsed"]),
            block=int(receipt["blockNumber"]),
            status=int(receipt["status"]),
        )
    path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in lines))


def only(label: str, round: int, change: Callable[[dict[str, Any]], dict[str, Any]]) -> Mutate:
    """A mutation of one transaction (by label and round)."""

    def mutate(rec: TxRecord, args: dict[str, Any]) -> dict[str, Any] | None:
        return change(args) if (rec.label, rec.round) == (label, round) else None

    return mutate


def opening(round: int, change: Callable[[dict[str, Any]], dict[str, Any]]) -> Mutate:
    """A mutation of the transaction that opens ``round`` (and posts its first batch): its
    openRound, or the finalizeAndOpen of the round before."""
    targets = {("openRound", round), ("finalizeAndOpen", round - 1)}

    def mutate(rec: TxRecord, args: dict[str, Any]) -> dict[str, Any] | None:
        return change(args) if (rec.label, rec.round) in targets else None

    return mutate


def closing(round: int, change: Callable[[dict[str, Any]], dict[str, Any]]) -> Mutate:
    """A mutation of the transaction that finalizes ``round``: its finalizeRound, or its
    finalizeAndOpen (which also opens the next round)."""
    targets = {("finalizeRound", round), ("finalizeAndOpen", round)}

    def mutate(rec: TxRecord, args: dict[str, Any]) -> dict[str, Any] | None:
        return change(args) if (rec.label, rec.round) in targets else None

    return mutate
