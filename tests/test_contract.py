"""The FedLedger contract's honest path and its bookkeeping, on the embedded chain (the
attacks on it are in tests/adversarial/)."""

from __future__ import annotations

import hashlib

import pytest
from ledger_fixtures import H0, WINDOW, make_fed

from fedledger.errors import LedgerError
from fedledger.ledger.contract import (
    GAS_FINALIZE,
    GAS_OPEN,
    GAS_OPEN_WORD,
    GAS_POST,
    GAS_POST_WORD,
    GAS_REGISTER,
    batch_size,
    pack_bitmap,
    unpack_bitmap,
)
from fedledger.ledger.keys import derive_account
from fedledger.protocol.selection import selection_seed


@pytest.fixture()
def fed():
    return make_fed()


def test_a_full_round_is_recorded_in_protocol_order(fed) -> None:
    fed.open()
    info = fed.contract.round_info(0)
    assert info["status"] == 1 and info["num_selected"] == 4
    assert info["selection_seed"] == selection_seed(
        salt=hashlib.sha256(b"salt").digest(), round=0, base_model_hash=H0
    )
    recs = fed.post([0, 1, 2, 3])
    assert [r.client for r in recs] == [fed.addr(i) for i in range(4)]
    assert all(r.source == "posted" for r in recs) and all(
        fed.contract.verify_commitment(r) for r in recs
    )
    assert fed.contract.commitments()[0] == recs  # the events say what the receipt said
    fed.close_window()
    new = fed.finalize(outcomes=[0, 0, 6, 0], flagged=[2])
    assert fed.contract.current_model_hash() == new
    assert fed.contract.rounds_finalized()[0]["outcomes"] == [0, 0, 6, 0]
    assert fed.contract.flags()[0] == [2] and fed.contract.reputation_of(fed.addr(2)) == -1
    assert fed.contract.round_info(0)["status"] == 2
    assert fed.contract.halted_by() is None


def test_a_left_out_client_submits_its_own_commitment_inside_the_window(fed) -> None:
    fed.open()
    fed.post([0, 1, 3])
    s = fed.signed(2)
    rec = fed.contract.submit_commitment(
        fed.clients[2], round=0, update_hash=s.commitment.update_hash, num_samples=5
    )
    assert rec.index == 3 and rec.source == "submitted" and rec.client == fed.addr(2)
    fed.close_window()
    fed.finalize()
    assert [r.source for r in fed.contract.commitments()[0]] == ["posted"] * 3 + ["submitted"]


def test_the_round_seed_and_the_draw_follow_the_finalized_model(fed) -> None:
    fed.full_round()
    opened = fed.contract.rounds_opened()
    fed.open([1, 3])
    info = fed.contract.round_info(1)
    assert info["base_model_hash"] == fed.model
    assert fed.contract.rounds_opened()[1]["selection_seed"] == fed.contract.selection_seed(
        1, fed.model
    )
    assert fed.contract.rounds_opened()[1]["selected"] == [1, 3]
    assert opened[0]["selection_seed"] != fed.contract.selection_seed(1, fed.model)


def test_reputation_excludes_a_repeat_offender_from_selection() -> None:
    fed = make_fed(max_flags=2)
    for _ in range(2):
        fed.open()
        fed.post([0, 1, 2, 3])
        fed.close_window()
        fed.finalize(outcomes=[0, 6, 0, 0], flagged=[1])
    assert fed.contract.is_excluded(fed.addr(1)) and fed.contract.exclusions()[1] == [1]
    with pytest.raises(LedgerError, match=r"FedLedgerClientExcluded\(round=2, client=1\)"):
        fed.open([0, 1, 2])
    fed.open([0, 2, 3])  # everybody else still can


def test_committee_votes_bind_the_final_digest_and_gate_the_outcomes() -> None:
    fed = make_fed(num_clients=6, clients_per_round=3, committee_size=3)
    fed.open([0, 1, 2])
    fed.post([0, 1, 2])
    fed.close_window()
    fed.contract.select_committee(fed.aggregator, round=0, members=[3, 4, 5])
    votes = [fed.vote(3, [1, 1, 0]), fed.vote(4, [1, 0, 0]), fed.vote(5, [1, 1, 0])]
    fed.contract.post_votes(fed.aggregator, round=0, votes=votes)
    assert fed.contract.accept_votes(0) == [3, 2, 0]
    with pytest.raises(LedgerError, match=r"FedLedgerNotAccepted\(round=0, index=2\)"):
        fed.finalize(outcomes=[0, 0, 0])
    fed.finalize(outcomes=[0, 0, 8], flagged=[2])
    assert [m for m, *_ in fed.contract.votes()[0]] == [fed.addr(3), fed.addr(4), fed.addr(5)]


def test_gas_limits_cover_what_the_calls_use(fed) -> None:
    """The wrapper's fixed gas limits (no estimateGas round trips) stay above the receipts."""
    fed.full_round()
    used = {(r.label, r.round): r.gas_used for r in fed.chain.log.records}
    assert used[("openRound", 0)] < GAS_OPEN[0] + GAS_OPEN[1] * 4 + GAS_OPEN_WORD
    assert used[("postCommitments", 0)] < GAS_POST[0] + GAS_POST[1] * 4 + GAS_POST_WORD
    assert used[("finalizeRound", 0)] < GAS_FINALIZE[0] + GAS_FINALIZE[1] * 4
    reg = next(r.gas_used for r in fed.chain.log.records if r.label == "registerClients")
    assert reg < GAS_REGISTER[0] + GAS_REGISTER[1] * 4


def test_batches_follow_the_block_gas_limit() -> None:
    """Registering more clients than one block holds splits into as many transactions as
    needed (the old fixed batch of 2,000 x 30k gas ran out of block gas above ~1,200)."""
    per_tx = batch_size(30_000_000, *GAS_REGISTER)
    assert 400 < per_tx < 2_000
    fed = make_fed(num_clients=2)
    many = [derive_account(seed=99, role="client", index=i).address for i in range(per_tx + 5)]
    sent = fed.contract.register_clients(fed.admin, many)
    assert sent == 2 and fed.contract.client_count() == per_tx + 7
    regs = fed.contract.registrations()
    assert regs[-1] == (per_tx + 6, many[-1]) and len(regs) == per_tx + 7
    assert max(r.gas_used for r in fed.chain.log.records) < fed.chain.block_gas_limit


def test_bitmaps_round_trip() -> None:
    for indices in ([], [0], [255, 256], [3, 17, 300, 9999], list(range(600))):
        assert unpack_bitmap(pack_bitmap(indices)) == sorted(indices)


def test_the_window_is_counted_from_the_last_post(fed) -> None:
    fed.open()
    fed.post([0])
    end = int(fed.contract.round_info(0)["window_end"])
    assert end == fed.chain.block_number + WINDOW
    fed.post([1])  # another batch extends it
    assert int(fed.contract.round_info(0)["window_end"]) == fed.chain.block_number + WINDOW
