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


def _hardhat_fed(url: str, seed: int):  # noqa: ANN202
    from ledger_fixtures import make_fed

    from fedledger.ledger.chain import Chain
    from fedledger.ledger.keys import derive_account

    roles = [derive_account(seed=seed, role=r) for r in ("deployer", "aggregator", "outsider")]
    # reverted transactions are mined on Hardhat (a block each): a window with room for them
    return make_fed(
        seed=seed, window=10, chain=Chain.from_url(url, fund=[a.address for a in roles])
    )


def test_contract_attacks_are_refused_with_the_same_decoded_errors_on_hardhat(
    hardhat_url: str,
) -> None:
    """A representative subset of tests/adversarial on a JSON-RPC node: Hardhat reports
    FedLedger's custom errors as "unrecognized", fedledger decodes them the same way as on the
    embedded chain."""
    import dataclasses

    from fedledger.errors import LedgerError

    fed = _hardhat_fed(hardhat_url, seed=41)
    fed.open([0, 1, 2])
    with pytest.raises(LedgerError, match=r"FedLedgerNotSelected\(round=0, client=3\)"):
        fed.post([3])
    with pytest.raises(LedgerError, match=r"AccessControlUnauthorizedAccount\(account="):
        fed.contract.finalize_round(
            fed.outsider, round=0, global_model_hash=b"\1" * 32, outcomes=[], flagged=[]
        )
    recs = fed.post([0, 1])
    with pytest.raises(LedgerError, match=r"FedLedgerWindowOpen\(round=0, windowEnd="):
        fed.finalize()
    with pytest.raises(LedgerError, match=r"FedLedgerDuplicateCommitment\(round=0, client=1\)"):
        fed.contract.submit_commitment(
            fed.clients[1], round=0, update_hash=b"\2" * 32, num_samples=1
        )
    # a forged signature: proven by an outsider, the ledger halts
    bad = dataclasses.replace(fed.signed(2), r=recs[0].r, vs=recs[0].vs)
    (forged,) = fed.contract.post_commitments(fed.aggregator, round=0, signed=[bad])
    from fedledger.ledger.contract import pack_records

    fed.contract.prove_bad_signature(
        fed.outsider,
        round=0,
        batch=forged.batch,
        position=0,
        packed=pack_records([forged], {fed.addr(2): 2}),
        client=fed.addr(2),
    )
    assert fed.contract.halted_by() == 0
    fed.close_window()
    with pytest.raises(LedgerError, match=r"FedLedgerHalted\(fraudulentRound=0\)"):
        fed.finalize()


def test_a_task_market_on_hardhat_pays_as_on_the_embedded_chain(
    hardhat_url: str, tmp_path: Path
) -> None:
    """The market's token, contract and every party's transactions on a JSON-RPC node: the
    same payouts as on the embedded chain, and `fedledger audit --url` re-derives them."""
    import csv

    market = {
        "task": {"budget": 50.0, "cost_budget": 5.0, "stake": 1.0, "validator_share": 0.1},
        "incentives": {"scoring": "leave_one_out", "validation_samples": 60},
        "committee": {"size": 2},
    }
    node = run_experiment(
        tiny_config(ledger={"url": hardhat_url}, **market), out=tmp_path / "node", progress=False
    )
    embedded = run_experiment(tiny_config(**market), out=tmp_path / "emb", progress=False)
    assert node["ledger"]["embedded"] is False
    assert node["market"]["phase"] == embedded["market"]["phase"] == "closed"

    def paid(run: Path) -> list[tuple[str, str, str]]:
        rows = csv.DictReader((run / "payouts.csv").open())
        return [(r["rounds_paid"], r["validation"], r["withdrawn"]) for r in rows]

    assert paid(tmp_path / "node") == paid(tmp_path / "emb")
    report = audit_run(tmp_path / "node", url=hardhat_url)
    assert report.ok, report.describe()
