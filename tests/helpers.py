"""Test helpers importable from any test module (``from helpers import tiny_config``)."""

from __future__ import annotations

from typing import Any

from fedledger.config import ExperimentConfig, config_from_dict


def tiny_config(**sections: Any) -> ExperimentConfig:
    """4 clients on a subsample of digits, 3 rounds: seconds, not minutes."""
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
        if isinstance(values, dict):
            raw.setdefault(name, {}).update(values)
        else:
            raw[name] = values
    return config_from_dict(raw)
