"""Test helpers importable from any test module (``from helpers import tiny_config``)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from fedledger.config import ExperimentConfig, config_from_dict
from fedledger.ledger.store import BlobStore


def tiny_config(**sections: Any) -> ExperimentConfig:
    """4 clients on a subsample of digits, 3 rounds: seconds, not minutes. A section given
    updates the default one (``model`` replaces it: its keys are that model's parameters)."""
    raw: dict[str, Any] = {
        "seed": 7,
        "name": "tiny",
        "data": {"name": "digits", "max_train_samples": 400, "max_test_samples": 200},
        "model": {"name": "mlp", "hidden": [16]},
        "federation": {
            "num_clients": 4,
            "rounds": 3,
            "local_epochs": 1,
            "batch_size": 16,
            "lr": 0.1,
        },
        "aggregation": {"name": "fedavg"},
        "ledger": {"enabled": True, "url": ""},
    }
    for name, values in sections.items():
        if name == "model":  # every key but the name is the model's parameter: replace it all
            raw["model"] = values
        elif isinstance(values, dict):
            raw.setdefault(name, {}).update(values)
        else:
            raw[name] = values
    return config_from_dict(raw)


def flip_blob_byte(store_dir: Path, digest: str, *, index: int, mask: int = 0x01) -> None:
    """Tamper with a stored blob in place: XOR one byte of it (as an attacker with write
    access to the run directory could)."""
    with sqlite3.connect(store_dir / BlobStore.DB_NAME) as db:
        (data,) = db.execute("SELECT data FROM blobs WHERE digest = ?", (digest,)).fetchone()
        b = bytearray(data)
        b[index] ^= mask
        db.execute("UPDATE blobs SET data = ? WHERE digest = ?", (bytes(b), digest))
    db.close()
