"""Whole runs on the embedded chain, audited; then tampered with, and audited again."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from eth_account.typed_transactions import TypedTransaction
from helpers import flip_blob_byte, tiny_config
from hexbytes import HexBytes

from fedledger.audit import audit_run
from fedledger.engine import Hooks, run_experiment
from fedledger.ledger.contract import load_artifact
from fedledger.ledger.keys import derive_account


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("run")
    summary = run_experiment(tiny_config(), out=out, progress=False)
    return out, summary


def _copy(run: Path, tmp_path: Path) -> Path:
    import shutil

    dst = tmp_path / "copy"
    shutil.copytree(run, dst)
    return dst


def test_run_writes_its_outputs_and_audits_clean(clean_run) -> None:
    out, summary = clean_run
    for name in ("config.toml", "metrics.csv", "summary.json", "accuracy.png", "clients.csv"):
        assert (out / name).exists(), name
    saved = json.loads((out / "summary.json").read_text())
    assert saved["global_model_hash"] == summary["global_model_hash"]
    final = (out / "model.safetensors").read_bytes()
    assert hashlib.sha256(final).hexdigest() == summary["global_model_hash"]
    # deploy, register, open+post round 0, finalize r + open+post r+1 (twice), finalize round 2
    assert saved["ledger"]["tx_count"] == 2 + 3 + 1
    assert saved["ledger"]["gas_used"] > 0 and saved["rounds"] == 3
    rows = (out / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("round,accuracy,loss,") and len(rows) == 4
    report = audit_run(out)
    assert report.ok, report.describe()
    assert report.rounds == 3 and report.commitments == 12


def test_same_seed_same_hash_and_ledger_off_is_the_same_training(clean_run, tmp_path: Path) -> None:
    _, summary = clean_run
    again = run_experiment(tiny_config(), out=tmp_path / "again", progress=False)
    assert again["global_model_hash"] == summary["global_model_hash"]
    plain = run_experiment(
        tiny_config(ledger={"enabled": False}), out=tmp_path / "plain", progress=False
    )
    assert plain["global_model_hash"] == summary["global_model_hash"]
    assert plain["ledger"]["tx_count"] == 0
    other = run_experiment(tiny_config(seed=8), out=tmp_path / "other", progress=False)
    assert other["global_model_hash"] != summary["global_model_hash"]


def test_malformed_updates_are_rejected_recorded_and_the_run_goes_on(tmp_path: Path) -> None:
    def hook(rnd: int, cid: int, delta: torch.Tensor) -> torch.Tensor | bytes:
        if rnd == 1 and cid == 0:
            return torch.full_like(delta, float("nan"))
        if rnd == 1 and cid == 1:
            return delta[:-3].clone()
        if rnd == 2 and cid == 2:
            return b"not a safetensors file"
        return delta

    out = tmp_path / "bad"
    summary = run_experiment(tiny_config(), out=out, progress=False, hooks=Hooks(update=hook))
    assert math.isfinite(summary["final_accuracy"])  # the NaN update never reached the model
    rejected = (out / "rejected.csv").read_text().splitlines()[1:]
    assert len(rejected) == 3
    assert rejected[0] == f"1,0,NON_FINITE: {summary['num_params']} NaN/Inf entries"
    assert rejected[1].startswith('1,1,"WRONG_SHAPE: expected shape')
    assert rejected[2].startswith("2,2,MALFORMED")
    metrics = [line.split(",") for line in (out / "metrics.csv").read_text().splitlines()[1:]]
    assert [int(m[10]) for m in metrics] == [0, 2, 1]  # num_rejected per round
    report = audit_run(out)
    assert report.ok, report.describe()


def test_a_left_out_client_submits_itself_and_the_audit_agrees(tmp_path: Path) -> None:
    out = tmp_path / "dropped"
    hooks = Hooks(drop_commitment=lambda rnd, cid: rnd == 1 and cid == 3)
    run_experiment(tiny_config(), out=out, progress=False, hooks=hooks)
    labels = [
        json.loads(line)["label"]
        for line in (out / "ledger/transactions.jsonl").read_text().splitlines()
    ]
    assert labels.count("submitCommitment") == 1
    report = audit_run(out)
    assert report.ok, report.describe()
    assert report.commitments == 12


def test_flipping_a_byte_of_an_update_names_round_and_client(clean_run, tmp_path: Path) -> None:
    run = _copy(clean_run[0], tmp_path)
    # find round 1's update of client 2 via the audit's own view of the ledger
    from fedledger.audit.auditor import Chain, Deployment, TxLog
    from fedledger.ledger import FedLedgerContract  # noqa: F401  (ensures the import path works)

    dep = Deployment.load(run / "ledger/deployment.json")
    chain = Chain.from_genesis(dep.genesis)
    list(chain.replay(TxLog.read(run / "ledger/transactions.jsonl")))
    from fedledger.ledger import FedLedgerContract as C

    recs = C(chain, dep.contract).commitments()[1]
    target = next(r for r in recs if r.client == dep.clients[2])
    flip_blob_byte(run / "store", target.update_hash.hex(), index=-5, mask=0x40)
    report = audit_run(run)
    assert not report.ok
    assert report.problems[0].startswith(f"round 1, client 2 ({dep.clients[2]})")
    assert "altered" in report.problems[0]


def test_flipping_a_byte_of_a_global_model_names_the_round(clean_run, tmp_path: Path) -> None:
    run = _copy(clean_run[0], tmp_path)
    final = clean_run[1]["global_model_hash"]
    flip_blob_byte(run / "store", final, index=-1)
    report = audit_run(run)
    assert not report.ok
    assert report.problems[0].startswith("round 2: global model blob")


def _resign_finalize(run: Path, rnd: int, change: dict[str, Any]) -> None:
    """A malicious aggregator rewrites the transaction that finalizes round ``rnd`` (its own)
    with other arguments, re-signs it and writes it back, without re-executing anything."""
    path = run / "ledger/transactions.jsonl"
    lines = path.read_text().splitlines()
    abi = load_artifact()["abi"]
    from web3 import Web3

    contract = Web3().eth.contract(abi=abi)
    agg = derive_account(seed=7, role="aggregator")
    for k, line in enumerate(lines):
        rec = json.loads(line)
        if rec["label"] in ("finalizeRound", "finalizeAndOpen") and rec["round"] == rnd:
            tx = dict(TypedTransaction.from_bytes(HexBytes(rec["raw"])).as_dict())
            fn, args = contract.decode_function_input(tx["data"])
            args.update(change)
            tx["data"] = contract.encode_abi(fn.fn_name, args=list(args.values()))
            for key in ("hash", "v", "r", "s", "y_parity", "yParity", "type"):
                tx.pop(key, None)
            tx["type"] = 2
            signed = agg.sign_transaction(tx)
            rec["raw"] = HexBytes(signed.raw_transaction).to_0x_hex()
            rec["tx_hash"] = HexBytes(signed.hash).to_0x_hex()
            lines[k] = json.dumps(rec, sort_keys=True)
    path.write_text("\n".join(lines) + "\n")


def test_a_rewritten_aggregation_record_names_the_round(clean_run, tmp_path: Path) -> None:
    run = _copy(clean_run[0], tmp_path)
    _resign_finalize(run, 2, {"globalModelHash": b"\x42" * 32})
    report = audit_run(run)
    assert not report.ok
    assert report.problems[0].startswith("round 2: recorded global model hash 4242424242424242")


def test_an_edited_transaction_log_fails_the_replay_naming_the_round(
    clean_run, tmp_path: Path
) -> None:
    run = _copy(clean_run[0], tmp_path)
    _resign_finalize(run, 0, {"outcomes": b""})  # no outcome for round 0's commitments
    report = audit_run(run)
    assert not report.ok
    assert "round 0" in report.problems[0] and "reverted" in report.problems[0]


def test_an_unreachable_node_is_a_clear_error(tmp_path: Path) -> None:
    import socket

    from fedledger.errors import LedgerError

    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = tiny_config(ledger={"url": f"http://127.0.0.1:{port}"})
    with pytest.raises(LedgerError, match="cannot reach an Ethereum JSON-RPC node"):
        run_experiment(cfg, out=tmp_path / "r", progress=False)


def test_every_run_has_its_own_contract_address_and_the_same_model(clean_run, tmp_path: Path) -> None:
    """Commitments bind the contract's address: two runs of one config must not share it (else
    one run's signatures would verify in the other)."""
    out, summary = clean_run
    again = run_experiment(tiny_config(), out=tmp_path / "again", progress=False)
    assert again["ledger"]["contract"] != summary["ledger"]["contract"]
    assert again["global_model_hash"] == summary["global_model_hash"]


def test_a_corrupted_deployment_file_is_a_finding(clean_run, tmp_path: Path) -> None:
    run = _copy(clean_run[0], tmp_path)
    (run / "ledger/deployment.json").write_text('{"contract": "0x12", "clients": []}')
    report = audit_run(run)
    assert not report.ok
    assert report.errors[0].check == "files" and "deployment.json: expected the keys" in report.errors[0].message


def test_a_quiet_run_prints_no_label_histogram_and_still_writes_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tiny_config(ledger={"enabled": False}, federation={"rounds": 1})
    run_experiment(cfg, out=tmp_path / "quiet", progress=False)
    quiet = capsys.readouterr()
    assert "label histogram" not in quiet.out + quiet.err
    assert (tmp_path / "quiet/clients.csv").read_text().count("\n") == 1 + 4
    run_experiment(cfg, out=tmp_path / "loud", progress=True)
    assert "label histogram" in capsys.readouterr().err
