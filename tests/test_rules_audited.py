"""Every registered rule runs end to end on the ledger and the audit recomputes it bit for bit."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import tiny_config

from fedledger.aggregation import rule_names
from fedledger.audit import audit_run
from fedledger.engine import run_experiment

PARAMS = {
    "krum": {"num_malicious": 1},
    "multikrum": {"num_malicious": 1},
    "bulyan": {"num_malicious": 1},
}


@pytest.mark.parametrize("rule", rule_names())
def test_rule_is_recorded_and_recomputed_by_the_audit(rule: str, tmp_path: Path) -> None:
    cfg = tiny_config(
        federation={"num_clients": 8, "clients_per_round": 7, "rounds": 2},
        aggregation={"name": rule, **PARAMS.get(rule, {})},
        attack={"name": "gaussian", "clients": [0, 1]},
    )
    out = tmp_path / rule
    summary = run_experiment(cfg, out=out, progress=False)
    assert summary["rounds"] == 2
    report = audit_run(out)
    assert report.ok, report.describe()
