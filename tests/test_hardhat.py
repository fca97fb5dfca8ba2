"""The same end-to-end scenario against a real JSON-RPC node (Hardhat v2 on 127.0.0.1)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers import flip_blob_byte, tiny_config

from fedledger.audit import audit_run
from fedledger.engine import Hooks, run_experiment

pytestmark = pytest.mark.hardhat


def test_end_to_end_on_hardhat_matches_the_embedded_chain(hardhat_url: str, tmp_path: Path) -> None:
    def hook(rnd: int, cid: int, delta: torch.Tensor) -> torch.Tensor:
        return torch.full_like(delta, float("inf")) if (rnd, cid) == (1, 0) else delta

    hooks = Hooks(update=hook, drop_commitment=lambda rnd, cid: (rnd, cid) == (2, 3))
    node = run_experiment(
        tiny_config(ledger={"url": hardhat_url}), out=tmp_path / "node", progress=False, hooks=hooks
    )
    embedded = run_experiment(tiny_config(), out=tmp_path / "emb", progress=False, hooks=hooks)
    assert node["ledger"]["embedded"] is False and node["ledger"]["chain_id"] == 31337
    assert node["global_model_hash"] == embedded["global_model_hash"]
    assert node["ledger"]["tx_count"] == embedded["ledger"]["tx_count"]

    report = audit_run(tmp_path / "node", url=hardhat_url)
    assert report.ok, report.describe()
    assert report.rounds == 3 and report.commitments == 12

    # tampering is caught on the live node too
    final = node["global_model_hash"]
    flip_blob_byte(tmp_path / "node" / "store", final, index=-1)
    report = audit_run(tmp_path / "node", url=hardhat_url)
    assert not report.ok and report.problems[0].startswith("round 2: global model blob")
