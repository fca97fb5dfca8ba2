"""The ledger process: the parties' steps (store, sign) and the bounded backlog."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import tiny_config

from fedledger.audit import audit_run
from fedledger.engine import ledger_process, run_experiment
from fedledger.engine.ledger_process import RoundRecord, read_dense
from fedledger.engine.parties import Parties
from fedledger.ledger.keys import derive_account
from fedledger.ledger.signing import domain_separator, recover_signer
from fedledger.ledger.store import BlobStore, sha256_hex
from fedledger.protocol.blobs import model_blob, update_blob

CONTRACT = "0x" + "11" * 20


def _record(tmp: Path, *, dense: torch.Tensor, model: bytes, **kw: object) -> RoundRecord:
    path = tmp / "round-0.f32"
    dense.numpy().tofile(path)
    fields: dict[str, object] = dict(
        round=0,
        dim=dense.shape[1],
        base_model_hash=b"\0" * 32,
        selected=[0, 1, 2],
        order=[2, 0, 1],
        dropped=[1],
        num_samples=[5, 6, 7],
        dense_rows=[1, -1, 0],
        blobs={1: b"raw bytes a client sent"},
        outcomes=[0, 4, 0],
        flagged=[0],
        model_blob=model,
        committee=[0],
        votes=[[1, 0, 1]],
        dense_file=str(path),
    )
    fields.update(kw)
    return RoundRecord(**fields)  # type: ignore[arg-type]


def _parties(tmp_path: Path) -> Parties:
    cfg = tiny_config()
    clients = [derive_account(seed=cfg.seed, role="client", index=i) for i in range(4)]
    domain = domain_separator(chain_id=1, contract=CONTRACT)
    return Parties(clients=clients, store=BlobStore(tmp_path / "store"), domain=domain)


def test_parties_store_and_sign_what_the_aggregator_saw(tmp_path: Path) -> None:
    parties = _parties(tmp_path)
    dense = torch.randn(2, 5)
    model = model_blob(torch.ones(5))
    rec = _record(tmp_path, dense=dense, model=model)
    plan = parties.commit(rec)

    assert not Path(rec.dense_file).exists()  # the hand-over file is gone once read
    assert [c.client for c in plan.batch] == [
        parties.clients[2].address,
        parties.clients[0].address,
    ]
    assert [c for c, _ in plan.left_out] == [1]
    signed = {2: plan.batch[0], 0: plan.batch[1], 1: plan.left_out[0][1]}
    expected = {2: update_blob(dense[1]), 0: b"raw bytes a client sent", 1: update_blob(dense[0])}
    for cid, s in signed.items():
        c = s.commitment
        assert c.update_hash.hex() == sha256_hex(expected[cid])
        assert parties.store.get_bytes(c.update_hash.hex()) == expected[cid]
        assert recover_signer(c, r=s.r, vs=s.vs, domain=parties.domain) == s.client
    assert [s.commitment.num_samples for s in (signed[2], signed[0], signed[1])] == [5, 6, 7]
    assert parties.store.get_bytes(sha256_hex(model)) == model
    assert plan.global_model_hash.hex() == sha256_hex(model)
    assert plan.votes[0].member == parties.clients[0].address and plan.votes[0].accept == b"\1\0\1"


def test_a_round_without_dense_updates_reads_no_file() -> None:
    rec = _record(Path(tempfile.mkdtemp()), dense=torch.zeros(1, 4), model=b"m", dense_file="")
    assert read_dense(rec).shape == (0, 4) and read_dense(rec).dtype == np.float32


def test_a_full_backlog_makes_the_trainer_wait_and_nothing_is_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ledger_process, "MAX_IN_FLIGHT", 1)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    out = tmp_path / "run"
    cfg = tiny_config(federation={"rounds": 5})
    summary = run_experiment(cfg, out=out, progress=False)
    rows = [line.split(",") for line in (out / "metrics.csv").read_text().splitlines()[1:]]
    header = (out / "metrics.csv").read_text().splitlines()[0].split(",")
    tx = header.index("tx_count")
    assert [int(r[tx]) for r in rows] == [3] * 5  # every row written once its round is on-chain
    assert summary["ledger"]["tx_count"] == 2 + 3 * 5
    assert not list(scratch.glob("fedledger-rounds-*"))  # the hand-over directory was removed
    report = audit_run(out)
    assert report.ok, report.describe()
