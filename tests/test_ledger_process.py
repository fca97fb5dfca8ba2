"""The helpers beside the trainer: the devices worker (clients sign, the aggregator checks on
receipt) and the ledger process (the chain, a bounded number of rounds behind)."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest
import torch
from helpers import tiny_config

from fedledger.audit import audit_run
from fedledger.engine import Hooks, run_experiment
from fedledger.engine.devices import Devices
from fedledger.ledger.keys import derive_account
from fedledger.ledger.session import LedgerSession, RoundPlan
from fedledger.ledger.signing import (
    SignedCommitment,
    domain_separator,
    recover_signer,
    sign_commitment,
)
from fedledger.ledger.store import BlobStore, sha256_hex
from fedledger.protocol.blobs import model_blob, update_blob
from fedledger.protocol.outcomes import USED, RejectReason

DOMAIN = domain_separator(chain_id=1, contract="0x" + "11" * 20)
BASE = b"\x05" * 32


def _tamper(rnd: int, cid: int, blob: bytes, signed: SignedCommitment):  # noqa: ANN202
    """What the network delivers instead, per client."""
    if cid == 1:  # other bytes than the client committed to
        return blob + b"!", signed
    if cid == 2:  # the blob is lost
        return None, signed
    if cid == 3:  # someone else signed the commitment in client 3's name
        forger = derive_account(seed=0, role="client", index=0)
        s = sign_commitment(signed.commitment, account=forger, domain=DOMAIN)
        return blob, dataclasses.replace(s, client=signed.client)
    return blob, signed


def test_clients_sign_and_the_aggregator_checks_every_receipt(tmp_path: Path) -> None:
    clients = tuple(derive_account(seed=0, role="client", index=i) for i in range(5))
    dev = Devices(
        clients=clients,
        store_dir=tmp_path / "store",
        domain=DOMAIN,
        dim=6,
        tamper=_tamper,
        max_clients=5,
    )
    updates = {c: torch.full((6,), float(c)) for c in range(4)}
    try:
        dev.start_round(3, BASE)
        for c, u in updates.items():
            dev.send_update(c, u, num_samples=10 + c)
        dev.send_update(4, b"raw bytes", num_samples=1)  # a client may send anything
        receipts = dev.finish_round()
        dev.store_global(model_blob(torch.ones(6)))
    finally:
        dev.close()
    assert {c: r.verdict for c, r in receipts.items()} == {
        0: USED,
        1: RejectReason.HASH_MISMATCH,
        2: RejectReason.BLOB_MISSING,
        3: RejectReason.BAD_SIGNATURE,
        4: USED,
    }
    good = receipts[0].signed
    assert good.commitment.round == 3 and good.commitment.base_model_hash == BASE
    assert good.commitment.num_samples == 10
    assert good.commitment.update_hash.hex() == sha256_hex(update_blob(updates[0]))
    assert (
        recover_signer(good.commitment, r=good.r, vs=good.vs, domain=DOMAIN) == clients[0].address
    )
    assert receipts[1].blob == update_blob(updates[1]) + b"!"  # what arrived, for the checks
    assert "signed by" in receipts[3].detail
    store = BlobStore(tmp_path / "store", readonly=True)
    assert store.get_bytes(good.commitment.update_hash.hex()) == update_blob(updates[0])
    assert receipts[2].signed.commitment.update_hash.hex() not in store  # nothing arrived
    assert hashlib.sha256(b"raw bytes").hexdigest() in store
    assert sha256_hex(model_blob(torch.ones(6))) in store


def test_each_round_signs_its_own_updates_when_the_shared_slots_are_reused(
    tmp_path: Path,
) -> None:
    """Round after round the same shared slots carry other clients' updates: every receipt
    must commit to the update its client handed over in that round, against that round's
    base model, and name no client of another round."""
    clients = tuple(derive_account(seed=0, role="client", index=i) for i in range(6))
    dev = Devices(
        clients=clients, store_dir=tmp_path / "store", domain=DOMAIN, dim=4, max_clients=3
    )
    plan = {0: [0, 1, 2], 1: [5, 3], 2: [4, 1, 0]}
    got = {}
    try:
        for rnd, chosen in plan.items():
            dev.start_round(rnd, bytes([rnd]) * 32)
            dev.sync()  # the worker watches the board before anything of the round is on it
            for c in chosen:
                dev.send_update(c, torch.full((4,), 10.0 * rnd + c), num_samples=rnd + c)
            got[rnd] = dev.finish_round()
    finally:
        dev.close()
    for rnd, chosen in plan.items():
        assert sorted(got[rnd]) == sorted(chosen)
        for c, r in got[rnd].items():
            com = r.signed.commitment
            assert r.verdict == USED
            assert (com.round, com.base_model_hash, com.num_samples) == (
                rnd,
                bytes([rnd]) * 32,
                rnd + c,
            )
            assert com.update_hash.hex() == sha256_hex(
                update_blob(torch.full((4,), 10.0 * rnd + c))
            )


def test_a_full_backlog_makes_the_trainer_wait_and_nothing_is_lost(tmp_path: Path) -> None:
    out = tmp_path / "run"
    cfg = tiny_config(federation={"rounds": 5}, ledger={"max_rounds_ahead": 1})
    summary = run_experiment(cfg, out=out, progress=False)
    rows = [line.split(",") for line in (out / "metrics.csv").read_text().splitlines()[1:]]
    header = (out / "metrics.csv").read_text().splitlines()[0].split(",")
    tx = header.index("tx_count")
    # every row written once its round is final on-chain: round 0 counts its opening and the
    # transaction that finalizes it and opens round 1, ..., round 4 its own finalization
    assert [int(r[tx]) for r in rows] == [2, 1, 1, 1, 1]
    assert summary["ledger"]["tx_count"] == 2 + 6
    report = audit_run(out)
    assert report.ok, report.describe()


def test_lockstep_clients_check_each_model_against_the_chain(tmp_path: Path) -> None:
    """max_rounds_ahead = 0: round r+1 trains only once round r is final on-chain, and the
    clients check the model they receive against the hash they read there; same model."""
    lock = run_experiment(
        tiny_config(ledger={"max_rounds_ahead": 0}), out=tmp_path / "l", progress=False
    )
    ahead = run_experiment(tiny_config(), out=tmp_path / "a", progress=False)
    assert lock["global_model_hash"] == ahead["global_model_hash"]
    assert audit_run(tmp_path / "l").ok


def test_the_ledger_records_a_round_only_once_the_store_has_its_blobs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every hash the ledger process is about to record (each posted update, the base and the
    new global model) is already committed to the store: checked inside the ledger process,
    which reads the store itself, at the moment it starts each round. The devices worker's
    commits are made slow (hashing 50 MB first), so that a ledger that did not wait for them
    would find the store behind."""
    out = tmp_path / "run"
    record = LedgerSession.record_round
    commit = BlobStore.commit

    def slow_commit(self: BlobStore) -> None:
        hashlib.sha256(bytes(50_000_000)).digest()
        commit(self)

    def checked(self: LedgerSession, plan: RoundPlan) -> tuple[int, int]:
        store = BlobStore(out / "store", readonly=True)
        try:
            hashes = [s.commitment.update_hash for s in plan.batch]
            hashes += [plan.base_model_hash, plan.global_model_hash]
            missing = [h.hex()[:12] for h in hashes if h.hex() not in store]
        finally:
            store.close()
        if missing:
            raise AssertionError(f"round {plan.round}: the store lacks {missing}")
        return record(self, plan)

    monkeypatch.setattr(LedgerSession, "record_round", checked)
    monkeypatch.setattr(BlobStore, "commit", slow_commit)
    cfg = tiny_config(federation={"rounds": 6, "num_clients": 8})
    summary = run_experiment(cfg, out=out, progress=False)
    assert summary["ledger"]["tx_count"] == 2 + 6 + 1  # every round was recorded
    assert audit_run(out).ok


def _report_sigint(conn) -> None:  # noqa: ANN001
    import signal

    conn.recv()
    conn.send(("ok", signal.getsignal(signal.SIGINT) is signal.SIG_IGN))
    conn.recv()  # "close"
    conn.send(("ok", None))


def test_helpers_leave_ctrl_c_to_the_trainer() -> None:
    """Ctrl-C reaches the whole process group; a helper ignores it (no traceback of its own)
    and is stopped by the trainer."""
    from fedledger.engine.child import Child

    child = Child("probe", _report_sigint, ())
    child.send(("ask",))
    assert child.recv() is True
    child.stop()


def test_an_interrupted_run_stops_its_helpers_and_audits_as_unfinished(tmp_path: Path) -> None:
    import multiprocessing

    def interrupt(rnd: int, cid: int, delta: torch.Tensor) -> torch.Tensor:
        if (rnd, cid) == (1, 2):
            raise KeyboardInterrupt
        return delta

    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        run_experiment(tiny_config(), out=out, progress=False, hooks=Hooks(update=interrupt))
    for p in multiprocessing.active_children():  # stopped, or exiting after their answer
        p.join(timeout=30)
        assert not p.is_alive()
    report = audit_run(out)
    assert not report.ok
    assert any("did not finish" in p for p in report.problems), report.describe()
