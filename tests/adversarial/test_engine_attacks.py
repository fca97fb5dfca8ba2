"""Misbehaviour inside a run (clients, the network, committee members, the admin's choice of
contract) and what the protocol and the audit make of it."""

from __future__ import annotations

import csv
import dataclasses
import json
import subprocess
from pathlib import Path

import pytest
from helpers import tiny_config

from fedledger.audit import audit_run
from fedledger.engine import Hooks, run_experiment
from fedledger.ledger import contract as contract_module
from fedledger.ledger.keys import derive_account
from fedledger.ledger.signing import SignedCommitment, sign_commitment

ROOT = Path(__file__).resolve().parents[2]


def test_a_commitment_signed_with_another_key_is_refused_and_the_client_is_absent(
    tmp_path: Path,
) -> None:
    """Client 1's commitment arrives signed by someone else's key: the aggregator refuses it on
    receipt (never posted, never aggregated) and the audit reports client 1 absent."""

    def impostor(rnd: int, cid: int, blob: bytes, signed: SignedCommitment):  # noqa: ANN202
        if (rnd, cid) != (1, 1):
            return blob, signed
        other = derive_account(seed=123, role="client", index=0)
        forged = sign_commitment(signed.commitment, account=other, domain=bytes(32))
        return blob, dataclasses.replace(signed, r=forged.r, vs=forged.vs)

    out = tmp_path / "imp"
    run_experiment(tiny_config(), out=out, progress=False, hooks=Hooks(tamper=impostor))
    rejected = list(csv.reader((out / "rejected.csv").open()))[1:]
    assert [(r[0], r[1]) for r in rejected] == [("1", "1")]
    assert rejected[0][2].startswith("BAD_SIGNATURE: signed by 0x")
    report = audit_run(out)
    assert report.ok, report.describe()
    assert [w.text for w in report.warnings if w.check == "accounting"] == [
        f"round 1, client 1 ({derive_account(seed=7, role='client', index=1).address}): "
        "selected, but no commitment was recorded (absent)"
    ]
    rows = (out / "metrics.csv").read_text().splitlines()
    absent = rows[0].split(",").index("num_absent")
    assert [int(r.split(",")[absent]) for r in rows[1:]] == [0, 1, 0]


def test_a_lost_or_swapped_blob_is_recorded_and_reported_unverifiable(tmp_path: Path) -> None:
    """The network loses client 0's blob in round 0 and swaps client 2's in round 2: both are
    recorded with their reason; the audit cannot verify them (the evidence is gone) and says
    so without failing."""

    def network(rnd: int, cid: int, blob: bytes, signed: SignedCommitment):  # noqa: ANN202
        if (rnd, cid) == (0, 0):
            return None, signed
        if (rnd, cid) == (2, 2):
            return blob[:-1] + bytes([blob[-1] ^ 1]), signed
        return blob, signed

    out = tmp_path / "lost"
    run_experiment(tiny_config(), out=out, progress=False, hooks=Hooks(tamper=network))
    rows = list(csv.reader((out / "rejected.csv").open()))[1:]
    assert [(r[0], r[1], r[2].split(":")[0]) for r in rows] == [
        ("0", "0", "BLOB_MISSING"),
        ("2", "2", "HASH_MISMATCH"),
    ]
    report = audit_run(out)
    assert report.ok, report.describe()
    unverifiable = [w.text for w in report.warnings if "cannot be verified" in w.text]
    assert len(unverifiable) == 2
    assert unverifiable[0].startswith("round 0, client 0 (") and "BLOB_MISSING" in unverifiable[0]
    assert unverifiable[1].startswith("round 2, client 2 (") and "HASH_MISMATCH" in unverifiable[1]


def test_a_dishonest_committee_member_is_reported_by_the_audit(tmp_path: Path) -> None:
    """Attackers on the committee vote for the attackers and against everybody else; the
    tally still decides, and the audit, which holds the members' data in a simulation,
    re-derives each vote and names the members whose votes disagree with their own data."""
    cfg = tiny_config(
        federation={"num_clients": 10, "clients_per_round": 5, "rounds": 2},
        aggregation={"name": "committee"},
        committee={"size": 5},
        attack={"name": "gaussian", "clients": [0, 1], "params": {}},
    )
    out = tmp_path / "dis"
    run_experiment(cfg, out=out, progress=False)
    report = audit_run(out)
    assert report.ok, report.describe()
    members = json.loads((out / "summary.json").read_text())["attack"]["malicious"]
    named = {
        w.client for w in report.warnings if w.check == "committee" and "disagrees" in w.message
    }
    assert named and named <= set(members)


def test_a_modified_contract_with_the_same_events_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The admin deploys another contract that emits the same events (here: the variant that
    checks every signature at posting time, benchmarks/contracts): the run goes through, the
    audit compares the deployed code with the committed artifact and refuses it."""
    subprocess.run(
        [
            "node",
            str(ROOT / "scripts/compile.js"),
            str(tmp_path / "art"),
            str(ROOT / "benchmarks/contracts"),
        ],
        check=True,
        capture_output=True,
    )
    variant = json.loads((tmp_path / "art/FedLedgerVerified.json").read_text())
    monkeypatch.setattr(contract_module, "load_artifact", lambda name="FedLedger": variant)
    monkeypatch.setattr(contract_module, "GAS_REGISTER", (60_000, 80_000))  # it stores more
    out = tmp_path / "mod"
    run_experiment(tiny_config(), out=out, progress=False)
    monkeypatch.undo()
    report = audit_run(out)
    assert not report.ok
    assert (
        report.errors[0].check == "deployment" and "a modified contract" in report.errors[0].message
    )


def test_the_aggregator_cannot_drop_a_commitment(tmp_path: Path) -> None:
    """The aggregator leaves client 3 out of round 1's batch; client 3 submits its own
    commitment inside the window and the aggregator has to give it an outcome."""
    out = tmp_path / "drop"
    hooks = Hooks(drop_commitment=lambda rnd, cid: (rnd, cid) == (1, 3))
    run_experiment(tiny_config(), out=out, progress=False, hooks=hooks)
    report = audit_run(out)
    assert report.ok and report.commitments == 12, report.describe()
    labels = [
        json.loads(x)["label"] for x in (out / "ledger/transactions.jsonl").read_text().splitlines()
    ]
    assert labels.count("submitCommitment") == 1


def test_as_many_left_out_clients_as_the_window_has_blocks_all_get_in(tmp_path: Path) -> None:
    """The aggregator leaves out two clients in one round; both submit inside a 2-block window
    (their gas is paid before the round opens, so funding takes no window block)."""
    out = tmp_path / "two"
    hooks = Hooks(drop_commitment=lambda rnd, cid: rnd == 1 and cid in (0, 2))
    run_experiment(tiny_config(), out=out, progress=False, hooks=hooks)
    report = audit_run(out)
    assert report.ok and report.commitments == 12, report.describe()
