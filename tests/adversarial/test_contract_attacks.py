"""Attacks on the FedLedger contract by its own participants, on the embedded py-evm chain.

Each test names who attacks and what stops it, and asserts the contract's exact custom error
(with its key arguments) or the exact event and halt state. The groups:

* Forged commitments (a dishonest aggregator). postCommitments does not check signatures
  (optimistic design), so a forged entry IS accepted; what stops it is the fraud proof anyone
  can make: the contract checks the one signature, emits FraudProven, marks the round
  fraudulent and halts the ledger. Forgeries: a zero signature, another client's key, an
  altered sample count, replays from another round, another deployment, another chain. The
  converse: nobody can frame an honest aggregator with a proof.
* Bad batches (a dishonest aggregator): unknown, unselected, repeated, out-of-order clients
  and zero sample counts are refused on posting, atomically.
* The halt: after a proven fraud no round moves, and further proofs still work.

Rounds, windows, roles and registration are in test_round_attacks.py, the committee in
test_committee_attacks.py.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest
from attack_helpers import (
    entry,
    err,
    post_batch,
    post_raw,
    prove,
    prover_of_last_fraud,
    wide_fed,
    zero_signature,
)
from ledger_fixtures import H0, make_fed

from fedledger.errors import LedgerError
from fedledger.ledger.signing import domain_separator, keccak, recover_signer, sign_commitment

HALTED_IN_0 = err("FedLedgerHalted", fraudulentRound=0)


@pytest.fixture()
def fed():
    return wide_fed()


def assert_forgery_is_provable(fed, forged, *, client: int = 2) -> None:
    """Post ``forged`` (client ``client``'s entry) between two honest ones: it is accepted;
    an outsider's proof then halts the ledger on this round."""
    rnd = fed.round
    batch = [fed.signed(0), forged, fed.signed(3)]
    packed = post_batch(fed, batch)
    assert int(fed.contract.round_info(rnd)["num_commitments"]) == 3  # optimistic: accepted
    assert keccak(packed) == bytes(fed.contract.contract.functions.batchHash(rnd, 0).call())
    for position, honest in ((0, 0), (2, 3)):  # the honest neighbours cannot be "proven" bad
        with pytest.raises(
            LedgerError, match=err("FedLedgerSignatureValid", round=rnd, client=honest)
        ):
            prove(fed, packed, position, honest)
    prove(fed, packed, 1, client)
    assert fed.contract.frauds() == {rnd: [(0, 1, client)]}
    assert prover_of_last_fraud(fed) == fed.outsider.address
    assert fed.contract.halted_by() == rnd and fed.contract.round_info(rnd)["fraudulent"]
    fed.close_window()
    with pytest.raises(LedgerError, match=err("FedLedgerHalted", fraudulentRound=rnd)):
        fed.finalize()


# ====================================================================== forged commitments
def test_zero_signature_is_accepted_then_proven_by_an_outsider(fed) -> None:
    """The aggregator posts client 2's entry with an all-zero signature (a commitment the
    client never made). postCommitments accepts it; an outsider's fraud proof (ecrecover
    fails) emits FraudProven, halts the ledger, and finalize reverts FedLedgerHalted."""
    fed.open()
    assert_forgery_is_provable(fed, zero_signature(fed.signed(2)))


def test_commitment_signed_by_another_clients_key_is_provable(fed) -> None:
    """The aggregator (colluding with client 1) posts an update for client 2 signed by client
    1's key. The proof recovers client 1, not client 2: fraud."""
    fed.open()
    assert_forgery_is_provable(fed, fed.signed(2, signer=fed.clients[1]))


def test_altered_sample_count_is_provable(fed) -> None:
    """The aggregator inflates client 2's weight: signed for 5 samples, posted with 6. The
    signed digest binds numSamples, so the proof shows the signature does not match."""
    fed.open()
    s = fed.signed(2, samples=5)
    assert_forgery_is_provable(fed, replace(s, commitment=replace(s.commitment, num_samples=6)))


def test_altered_update_hash_is_provable(fed) -> None:
    """The aggregator swaps client 2's update for its own, keeping the client's signature."""
    fed.open()
    s = fed.signed(2)
    swapped = replace(s.commitment, update_hash=hashlib.sha256(b"poison").digest())
    assert_forgery_is_provable(fed, replace(s, commitment=swapped))


def test_replay_from_another_round_is_provable(fed) -> None:
    """The aggregator reposts client 2's valid, public round-0 signature in round 1 (the
    client did not take part in round 1). The digest binds round and base model: fraud."""
    fed.full_round()
    old = next(r for r in fed.contract.commitments()[0] if r.client == fed.addr(2))
    fed.open()
    replayed = fed.signed(2, round=0, base=H0, update=old.update_hash)
    assert (replayed.r, replayed.vs) == (old.r, old.vs)  # exactly what round 0 recorded
    assert_forgery_is_provable(fed, replayed)


def test_replay_from_another_run_is_provable(fed) -> None:
    """The same client takes part in a second run (another deployment on the same chain,
    same keys). The aggregator reposts its signature from that run here; the EIP-712 domain
    binds the contract address, so the proof succeeds."""
    other = make_fed(chain=fed.chain)
    assert other.contract.address != fed.contract.address
    assert other.addr(2) == fed.addr(2)
    fed.open()
    s = sign_commitment(
        fed.signed(2).commitment, account=fed.clients[2], domain=other.contract.domain
    )
    assert recover_signer(s.commitment, r=s.r, vs=s.vs, domain=other.contract.domain) == fed.addr(2)
    assert_forgery_is_provable(fed, s)


def test_replay_from_another_chain_is_provable(fed) -> None:
    """A signature made for the same contract address on another chain (a fork, a testnet
    rerun) is reposted here; the domain binds the chain id."""
    fed.open()
    foreign = domain_separator(chain_id=fed.chain.chain_id + 1, contract=fed.contract.address)
    s = sign_commitment(fed.signed(2).commitment, account=fed.clients[2], domain=foreign)
    assert_forgery_is_provable(fed, s)


def test_an_honest_aggregator_cannot_be_framed(fed) -> None:
    """A griefer tries to halt an honest run: proofs against valid signatures, against bytes
    that are not a posted batch, beyond the batch, or naming the wrong client all revert, the
    ledger stays up and the round finalizes."""
    fed.open()
    batch = [fed.signed(0), fed.signed(1), fed.signed(2)]
    packed = post_batch(fed, batch)
    with pytest.raises(LedgerError, match=err("FedLedgerSignatureValid", round=0, client=1)):
        prove(fed, packed, 1, 1)
    tampered = packed[:40] + bytes([packed[40] ^ 1]) + packed[41:]  # samples of entry 0
    with pytest.raises(LedgerError, match=err("FedLedgerUnknownBatch", round=0, batch=0)):
        prove(fed, tampered, 0, 0)
    with pytest.raises(LedgerError, match=err("FedLedgerUnknownBatch", round=0, batch=1)):
        prove(fed, packed, 0, 0, batch=1)
    with pytest.raises(LedgerError, match=err("FedLedgerUnknownBatch", round=3, batch=0)):
        prove(fed, packed, 0, 0, round=3)
    with pytest.raises(LedgerError, match=err("FedLedgerBadPosition", round=0, position=3)):
        prove(fed, packed, 3, 0)
    with pytest.raises(LedgerError, match=err("FedLedgerWrongClient", index=1, client=fed.addr(2))):
        prove(fed, packed, 1, 2)  # client 1's valid entry, "proven" against client 2
    assert fed.contract.halted_by() is None and fed.contract.frauds() == {}
    fed.close_window()
    fed.finalize()


def test_a_forgery_cannot_be_excused_by_naming_its_signer(fed) -> None:
    """Client 2's entry carries client 3's signature; a colluding prover names client 3 (whose
    signature it is) to get FedLedgerSignatureValid. The client must be the entry's own."""
    fed.open()
    packed = post_batch(fed, [fed.signed(2, signer=fed.clients[3])])
    with pytest.raises(LedgerError, match=err("FedLedgerWrongClient", index=2, client=fed.addr(3))):
        prove(fed, packed, 0, 3)
    prove(fed, packed, 0, 2)
    assert fed.contract.halted_by() == 0


# ====================================================================== bad batches
def test_posting_for_an_unregistered_index_is_refused(fed) -> None:
    """The aggregator invents client 4 (only 0..3 are registered), or the largest index."""
    fed.open()
    with pytest.raises(LedgerError, match=err("FedLedgerUnknownClient", index=4)):
        post_raw(fed, entry(4))
    with pytest.raises(LedgerError, match=err("FedLedgerUnknownClient", index=2**32 - 1)):
        post_raw(fed, entry(1) + entry(2**32 - 1))
    assert int(fed.contract.round_info(0)["num_commitments"]) == 0


def test_posting_for_an_unselected_client_is_refused(fed) -> None:
    """The aggregator posts a valid commitment of client 2, registered but not selected."""
    fed.open([0, 1])
    with pytest.raises(LedgerError, match=err("FedLedgerNotSelected", round=0, client=2)):
        post_batch(fed, [fed.signed(0), fed.signed(2)])
    assert not fed.contract.contract.functions.hasCommitted(0, fed.addr(0)).call()  # atomic


def test_repeated_or_unordered_entries_are_refused(fed) -> None:
    """The aggregator counts a client twice: in one batch (twice, or out of order to dodge the
    check) or again in a later batch, or after the client submitted its own."""
    fed.open()
    with pytest.raises(LedgerError, match=err("FedLedgerNotAscending", round=0, position=1)):
        post_batch(fed, [fed.signed(1), fed.signed(1)])
    with pytest.raises(LedgerError, match=err("FedLedgerNotAscending", round=0, position=2)):
        post_batch(fed, [fed.signed(0), fed.signed(2), fed.signed(1)])
    post_batch(fed, [fed.signed(1)])
    with pytest.raises(LedgerError, match=err("FedLedgerDuplicateCommitment", round=0, client=1)):
        post_batch(fed, [fed.signed(0), fed.signed(1)])
    s = fed.signed(3)
    fed.contract.submit_commitment(
        fed.clients[3], round=0, update_hash=s.commitment.update_hash, num_samples=5
    )
    with pytest.raises(LedgerError, match=err("FedLedgerDuplicateCommitment", round=0, client=3)):
        post_batch(fed, [s])
    assert int(fed.contract.round_info(0)["num_commitments"]) == 2


def test_zero_sample_counts_are_refused(fed) -> None:
    """A commitment with 0 samples (a free vote in a weighted rule), posted or self-submitted."""
    fed.open()
    with pytest.raises(LedgerError, match=err("FedLedgerZeroSamples", round=0, client=2)):
        post_batch(fed, [fed.signed(1), fed.signed(2, samples=0)])
    with pytest.raises(LedgerError, match=err("FedLedgerZeroSamples", round=0, client=2)):
        fed.contract.submit_commitment(
            fed.clients[2], round=0, update_hash=bytes(32), num_samples=0
        )


def test_bad_entries_in_later_bitmap_words_are_named() -> None:
    """A batch spans several 256-client bitmap words and its bad entry sits in a later word
    than good ones: the contract names that entry (it checks the whole batch before it marks
    anyone as committed), and a refused batch leaves nobody committed."""
    fed = wide_fed(num_clients=520)
    fed.open([3, 300, 515])
    with pytest.raises(LedgerError, match=err("FedLedgerNotSelected", round=0, client=260)):
        post_batch(fed, [fed.signed(3), fed.signed(260)])
    with pytest.raises(LedgerError, match=err("FedLedgerZeroSamples", round=0, client=515)):
        post_batch(fed, [fed.signed(3), fed.signed(300), fed.signed(515, samples=0)])
    with pytest.raises(LedgerError, match=err("FedLedgerNotAscending", round=0, position=2)):
        post_batch(fed, [fed.signed(3), fed.signed(515), fed.signed(300)])
    committed = fed.contract.contract.functions.hasCommitted
    assert not any(committed(0, fed.addr(c)).call() for c in (3, 300, 515))
    post_batch(fed, [fed.signed(3), fed.signed(515)])
    with pytest.raises(LedgerError, match=err("FedLedgerDuplicateCommitment", round=0, client=515)):
        post_batch(fed, [fed.signed(300), fed.signed(515)])
    post_batch(fed, [fed.signed(300)])
    assert all(committed(0, fed.addr(c)).call() for c in (3, 300, 515))
    assert int(fed.contract.round_info(0)["num_commitments"]) == 3


def test_ragged_batches_are_refused(fed) -> None:
    """The aggregator posts a batch whose length is not a whole number of entries."""
    fed.open()
    with pytest.raises(LedgerError, match=err("FedLedgerMalformedPacking", length=107, unit=108)):
        post_raw(fed, entry(1)[:-1])


# ====================================================================== the halt
def test_after_a_proven_fraud_no_round_moves_but_proofs_still_work() -> None:
    """After one forgery is proven, the aggregator tries to carry on: every open, post,
    submit, committee, vote and finalize reverts FedLedgerHalted; a watcher can still prove
    the batch's second forgery (the halt keeps naming the first fraudulent round)."""
    fed = make_fed(num_clients=6, committee_size=3)
    fed.open([0, 1, 2, 3])
    batch = [fed.signed(0), zero_signature(fed.signed(1)), fed.signed(2, signer=fed.clients[0])]
    packed = post_batch(fed, batch)
    prove(fed, packed, 1, 1)
    c, h = fed.contract, bytes(32)
    with pytest.raises(LedgerError, match=HALTED_IN_0):
        c.submit_commitment(fed.clients[3], round=0, update_hash=h, num_samples=5)
    with pytest.raises(LedgerError, match=HALTED_IN_0):
        post_batch(fed, [fed.signed(3)])
    fed.close_window()
    with pytest.raises(LedgerError, match=HALTED_IN_0):
        c.select_committee(fed.aggregator, round=0, members=[3, 4, 5])
    with pytest.raises(LedgerError, match=HALTED_IN_0):
        c.post_votes(fed.aggregator, round=0, votes=[fed.vote(3, [1, 1, 1])])
    with pytest.raises(LedgerError, match=HALTED_IN_0):
        fed.finalize()
    with pytest.raises(LedgerError, match=HALTED_IN_0):
        c.open_round(fed.aggregator, round=1, base_model_hash=H0, selected=[0])
    prove(fed, packed, 2, 2, prover=fed.clients[2])  # the victim proves its own forgery
    assert c.frauds() == {0: [(0, 1, 1), (0, 2, 2)]} and c.halted_by() == 0
    assert prover_of_last_fraud(fed) == fed.addr(2)
    with pytest.raises(LedgerError, match=err("FedLedgerSignatureValid", round=0, client=0)):
        prove(fed, packed, 0, 0)
