"""Attacks the contract lets through by design or cannot see, caught by the audit: a hostile
aggregator rewriting its own (re-signed, consistently replayable) transactions, parties editing
the run directory, and misbehaviour the engine's hooks inject. Each test asserts the audit's
exact finding (check, round, client)."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import torch
from forge import closing, forge_log, opening
from helpers import flip_blob_byte, tiny_config
from typer.testing import CliRunner

from fedledger.audit import audit_run
from fedledger.cli.main import app
from fedledger.engine import Hooks, run_experiment
from fedledger.ledger.signing import SignedCommitment

runner = CliRunner()
SIG = slice(44, 108)  # r | vs inside a packed commitment (108 bytes each)


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("clean") / "run"
    run_experiment(tiny_config(), out=out, progress=False)
    assert audit_run(out).ok
    return out


@pytest.fixture()
def run(clean: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(clean, dst)
    return dst


def _entry(packed: bytes, k: int) -> bytearray:
    return bytearray(packed[108 * k : 108 * (k + 1)])


def _replace_entry(packed: bytes, k: int, entry: bytes) -> bytes:
    return packed[: 108 * k] + entry + packed[108 * (k + 1) :]


def _errors(run: Path, check: str) -> list[str]:
    report = audit_run(run)
    return [f.text for f in report.errors if f.check == check]


# ------------------------------------------------------------------ the aggregator's records
def test_a_posted_commitment_with_an_all_zero_signature_is_an_audit_error(run: Path) -> None:
    """The aggregator posts client 1's commitment with r = vs = 0 (the old audit took such an
    entry for the client's own submission); the sender now comes from the event."""

    def zero(args: dict[str, Any]) -> dict[str, Any]:
        e = _entry(args["packed"], 1)
        e[SIG] = bytes(64)
        return {**args, "packed": _replace_entry(args["packed"], 1, bytes(e))}

    forge_log(run, opening(0, zero))
    errs = _errors(run, "signature")
    assert errs and errs[0].startswith("round 0, client 1 (") and "an invalid signature" in errs[0]


def test_a_commitment_signed_by_another_key_is_an_audit_error(run: Path) -> None:
    """The aggregator swaps in client 2's signature for client 1's entry."""

    def swap(args: dict[str, Any]) -> dict[str, Any]:
        e1, e2 = _entry(args["packed"], 1), _entry(args["packed"], 2)
        e1[SIG] = e2[SIG]
        return {**args, "packed": _replace_entry(args["packed"], 1, bytes(e1))}

    forge_log(run, opening(1, swap))
    errs = _errors(run, "signature")
    assert errs and errs[0].startswith("round 1, client 1 (") and "forged or altered" in errs[0]


def test_an_altered_sample_count_breaks_the_clients_signature(run: Path) -> None:
    """The aggregator inflates client 3's sample count (to weight it up in FedAvg)."""

    def inflate(args: dict[str, Any]) -> dict[str, Any]:
        e = _entry(args["packed"], 3)
        e[36:44] = (10_000).to_bytes(8, "big")
        return {**args, "packed": _replace_entry(args["packed"], 3, bytes(e))}

    forge_log(run, opening(2, inflate))
    assert any(t.startswith("round 2, client 3 (") for t in _errors(run, "signature"))
    assert _errors(run, "aggregation")  # and the recorded model no longer follows


def test_a_valid_update_rejected_as_non_finite_is_named(run: Path) -> None:
    def reject(args: dict[str, Any]) -> dict[str, Any]:
        return {**args, "outcomes": b"\x00\x06\x00\x00", "flagged": (1).to_bytes(4, "big")}

    forge_log(run, closing(1, reject))
    errs = _errors(run, "outcomes")
    assert errs[0].startswith("round 1, client 1 (")
    assert errs[0].endswith("rejected as NON_FINITE, but the update is valid")


def test_an_invalid_update_marked_used_is_named(tmp_path: Path) -> None:
    """Client 0 sends NaNs in round 1; the aggregator records it as used."""
    out = tmp_path / "nan"

    def nan(rnd: int, cid: int, delta: torch.Tensor) -> torch.Tensor:
        return torch.full_like(delta, float("nan")) if (rnd, cid) == (1, 0) else delta

    run_experiment(tiny_config(), out=out, progress=False, hooks=Hooks(update=nan))
    assert audit_run(out).ok
    forge_log(out, closing(1, lambda a: {**a, "outcomes": bytes(4), "flagged": b""}))
    errs = _errors(out, "outcomes")
    assert errs[0].startswith("round 1, client 0 (") and "was used but NON_FINITE" in errs[0]


def test_a_rejection_for_a_missing_blob_that_is_in_the_store_is_named(run: Path) -> None:
    def claim(args: dict[str, Any]) -> dict[str, Any]:
        return {**args, "outcomes": b"\x00\x00\x01\x00", "flagged": (2).to_bytes(4, "big")}

    forge_log(run, closing(0, claim))
    errs = _errors(run, "outcomes")
    assert (
        errs[0].startswith("round 0, client 2 (")
        and "rejected as BLOB_MISSING, but the update is valid" in errs[0]
    )


def test_an_unflagged_rejection_is_named(tmp_path: Path) -> None:
    """The aggregator rejects client 0's NaN update but leaves it unflagged (sparing its
    reputation)."""
    out = tmp_path / "flag"

    def nan(rnd: int, cid: int, delta: torch.Tensor) -> torch.Tensor:
        return torch.full_like(delta, float("nan")) if (rnd, cid) == (0, 0) else delta

    run_experiment(tiny_config(), out=out, progress=False, hooks=Hooks(update=nan))
    forge_log(out, closing(0, lambda a: {**a, "flagged": b""}))
    errs = _errors(out, "flags")
    assert errs[0] == "round 0: flagged clients [] on-chain, but the rule excluded or rejected [0]"


def test_a_ground_selection_is_named(tmp_path: Path) -> None:
    """The aggregator picks its own clients instead of the seeded draw."""
    out = tmp_path / "sel"
    cfg = tiny_config(federation={"num_clients": 6, "clients_per_round": 3})
    run_experiment(cfg, out=out, progress=False, hooks=Hooks(select=lambda rnd, sel: [0, 1, 2]))
    errs = _errors(out, "selection")
    assert errs and all("but the seeded draw is" in e for e in errs)


def test_a_forged_commitment_is_proven_by_its_client_during_the_run(tmp_path: Path) -> None:
    """A hostile aggregator posts client 2's commitment with client 3's signature: client 2
    reads the batch, proves the forgery on-chain (the ledger halts) and the run stops."""
    from fedledger.errors import LedgerError

    def forge(rnd: int, batch: list[SignedCommitment]) -> list[SignedCommitment]:
        if rnd != 1:
            return batch
        out = list(batch)
        out[2] = SignedCommitment(
            commitment=batch[2].commitment, client=batch[2].client, r=batch[3].r, vs=batch[3].vs
        )
        return out

    with pytest.raises(LedgerError, match="client 2 found a commitment in its name"):
        run_experiment(tiny_config(), out=tmp_path / "f", progress=False, hooks=Hooks(forge=forge))
    report = audit_run(tmp_path / "f")
    texts = [f.text for f in report.errors]
    assert any(t.startswith("round 1, client 2 (") and "fraud proof" in t for t in texts)


# ------------------------------------------------------------------ edited files
def test_an_edited_deployment_json_is_named(run: Path) -> None:
    path = run / "ledger/deployment.json"
    dep = json.loads(path.read_text())
    dep["aggregator"], dep["clients"][0] = dep["clients"][0], dep["aggregator"]
    path.write_text(json.dumps(dep))
    report = audit_run(run)
    checks = {f.check for f in report.errors}
    assert {"roles", "registrations"} <= checks


def test_an_edited_config_toml_is_named(run: Path) -> None:
    path = run / "config.toml"
    path.write_text(path.read_text().replace("lr = 0.1", "lr = 0.2"))
    assert _errors(run, "config")[0] == (
        "config.toml differs from the configuration hash recorded at deployment"
    )


def test_edited_outputs_are_named(run: Path) -> None:
    path = run / "metrics.csv"
    lines = path.read_text().splitlines()
    cells = lines[2].split(",")
    cells[1] = "0.99"
    lines[2] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    summary = json.loads((run / "summary.json").read_text())
    summary["ledger"]["gas_used"] = 1
    (run / "summary.json").write_text(json.dumps(summary))
    (run / "model.safetensors").write_bytes(b"another model")
    report = audit_run(run)
    texts = [f.text for f in report.errors]
    assert any(t.startswith("round 1: metrics.csv line 3: accuracy 0.99") for t in texts)
    assert any("summary.json says ledger.gas_used = 1" in t for t in texts)
    assert any(t.startswith("model.safetensors hashes to") for t in texts)


def test_a_corrupted_transaction_log_names_the_line(run: Path) -> None:
    path = run / "ledger/transactions.jsonl"
    data = bytearray(path.read_bytes())
    second = data.index(b"\n") + 1
    data[second + 5] = 0xFF  # not UTF-8 any more
    path.write_bytes(bytes(data))
    res = runner.invoke(app, ["audit", str(run)])
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert "transactions.jsonl:2: not a transaction record" in res.output


def test_a_truncated_store_is_a_finding(run: Path) -> None:
    db = run / "store/blobs.sqlite3"
    db.write_bytes(db.read_bytes()[:1000])
    res = runner.invoke(app, ["audit", str(run), "--json"])
    assert res.exit_code == 1 and "Traceback" not in res.output
    report = json.loads(res.output)
    assert report["ok"] is False and "cannot be read" in report["findings"][0]["message"]


def test_a_flipped_blob_byte_names_round_and_client(run: Path) -> None:
    with sqlite3.connect(run / "store/blobs.sqlite3") as db:
        digests = [d for (d,) in db.execute("SELECT digest FROM blobs")]
    db.close()
    from fedledger.audit.checks_deployment import read_view
    from fedledger.ledger.chain import Chain, TxLog
    from fedledger.ledger.contract import FedLedgerContract
    from fedledger.ledger.deployment import Deployment

    dep = Deployment.load(run / "ledger/deployment.json")
    chain = Chain.from_genesis(dep.genesis or {})
    list(chain.replay(TxLog.read(run / "ledger/transactions.jsonl")))
    view = read_view(FedLedgerContract(chain, dep.contract))
    target = next(r for r in view.commitments[1] if r.client == dep.clients[2])
    assert target.update_hash.hex() in digests
    flip_blob_byte(run / "store", target.update_hash.hex(), index=-5, mask=0x40)
    errs = _errors(run, "store")
    assert errs[0].startswith(f"round 1, client 2 ({dep.clients[2]})") and "altered" in errs[0]
