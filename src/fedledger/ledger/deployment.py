"""``ledger/deployment.json``: what an auditor needs to find and replay a run's ledger. It holds
addresses only, never a key."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import rlp
from eth_utils import keccak, to_checksum_address

from fedledger.errors import LedgerError

DEPLOYMENT_FILE = "deployment.json"
TX_FILE = "transactions.jsonl"


def contract_address(deployer: str, nonce: int) -> str:
    """The address a contract created by ``deployer`` at ``nonce`` gets (CREATE)."""
    raw = rlp.encode([bytes.fromhex(deployer.removeprefix("0x")), nonce])
    return to_checksum_address(keccak(raw)[12:])


@dataclass(frozen=True)
class Deployment:
    contract: str
    chain_id: int
    embedded: bool
    url: str
    genesis: dict[str, Any] | None
    admin: str
    aggregator: str
    clients: list[str]
    keys: str  # "simulated" or "keystore" (the kind, never the keys)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=1, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: Path) -> Deployment:
        """Read and check the file; a LedgerError names what is wrong with it."""
        try:
            raw = json.loads(path.read_bytes().decode("utf-8"))
        except FileNotFoundError:
            raise LedgerError(f"{path} is missing: the run was made without the ledger") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise LedgerError(f"{path} is not valid JSON ({exc})") from None
        expected = {f for f in cls.__dataclass_fields__}
        if not isinstance(raw, dict) or set(raw) != expected:
            got = sorted(raw) if isinstance(raw, dict) else type(raw).__name__
            raise LedgerError(f"{path}: expected the keys {sorted(expected)}, got {got}")
        try:
            for key in ("contract", "admin", "aggregator"):
                raw[key] = to_checksum_address(raw[key])
            if not isinstance(raw["clients"], list):
                raise ValueError("clients is not a list")
            raw["clients"] = [to_checksum_address(c) for c in raw["clients"]]
            if not isinstance(raw["chain_id"], int) or not isinstance(raw["embedded"], bool):
                raise ValueError("chain_id must be an integer and embedded a boolean")
            if raw["embedded"] and not isinstance(raw["genesis"], dict):
                raise ValueError("an embedded chain needs its genesis")
        except (ValueError, TypeError) as exc:
            raise LedgerError(f"{path}: {exc}") from None
        return cls(**raw)
