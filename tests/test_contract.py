"""The FedLedger contract's rules, on the embedded chain."""

import dataclasses
import hashlib

import pytest

from fedledger.errors import LedgerError
from fedledger.ledger import Chain, Commitment, FedLedgerContract, derive_account, sign_commitment
from fedledger.ledger.chain import ETHER

SEED = 11
H0 = hashlib.sha256(b"initial").digest()


@pytest.fixture()
def ledger():
    dep = derive_account(seed=SEED, role="deployer")
    agg = derive_account(seed=SEED, role="aggregator")
    clients = [derive_account(seed=SEED, role="client", index=i) for i in range(4)]
    chain = Chain.embedded_chain(funded=[dep.address, agg.address])
    for c in clients:
        chain.send(dep, {"to": c.address, "value": ETHER, "data": b""}, gas=21_000, label="fund")
    contract = FedLedgerContract.deploy(
        chain, deployer=dep, aggregator=agg.address, config_hash=b"\x01" * 32, initial_model_hash=H0
    )
    contract.register_clients(dep, [c.address for c in clients])
    return contract, dep, agg, clients


def _open_round0(contract, agg, clients) -> None:
    contract.open_round(agg, round=0, base_model_hash=H0, selected=[c.address for c in clients])


def _signed(contract, clients, rnd):
    return [
        sign_commitment(
            Commitment(
                round=rnd, update_hash=hashlib.sha256(bytes([i, rnd])).digest(), num_samples=5 + i
            ),
            account=c,
            domain=contract.domain,
        )
        for i, c in enumerate(clients)
    ]


def test_a_full_round_is_recorded(ledger) -> None:
    contract, _, agg, clients = ledger
    _open_round0(contract, agg, clients)
    recs = contract.post_commitments(agg, round=0, signed=_signed(contract, clients, 0))
    assert [r.client for r in recs] == [c.address for c in clients]
    assert all(contract.verify_commitment(r) for r in recs)
    new = hashlib.sha256(b"g1").digest()
    contract.finalize_round(
        agg, round=0, global_model_hash=new, outcomes=[0, 0, 6, 0], flagged=[clients[1].address]
    )
    assert contract.current_model_hash() == new
    assert contract.rounds_finalized()[0]["outcomes"] == [0, 0, 6, 0]
    assert contract.reputation_of(clients[1].address) == -1
    info = contract.round_info(0)
    assert info["finalized"] and info["num_commitments"] == 4


def test_only_the_aggregator_opens_rounds(ledger) -> None:
    contract, _, _, clients = ledger
    with pytest.raises(LedgerError, match="AccessControlUnauthorizedAccount"):
        contract.open_round(clients[0], round=0, base_model_hash=H0, selected=[clients[0].address])


def test_rounds_are_consecutive_and_chain_the_model(ledger) -> None:
    contract, _, agg, clients = ledger
    with pytest.raises(LedgerError, match="RoundOutOfOrder"):
        contract.open_round(agg, round=1, base_model_hash=H0, selected=[])
    with pytest.raises(LedgerError, match="BaseModelMismatch"):
        contract.open_round(agg, round=0, base_model_hash=b"\x09" * 32, selected=[])


def test_aggregator_cannot_drop_a_commitment(ledger) -> None:
    """A client left out of the batch submits itself; finalizing without its outcome fails."""
    contract, _, agg, clients = ledger
    _open_round0(contract, agg, clients)
    signed = _signed(contract, clients, 0)
    contract.post_commitments(agg, round=0, signed=signed[:3])
    rec = contract.submit_commitment(
        clients[3], round=0, update_hash=signed[3].commitment.update_hash, num_samples=8
    )
    assert rec.index == 3 and not rec.relayed
    with pytest.raises(LedgerError, match="OutcomesMismatch"):
        contract.finalize_round(agg, round=0, global_model_hash=H0, outcomes=[0, 0, 0], flagged=[])
    contract.finalize_round(agg, round=0, global_model_hash=H0, outcomes=[0, 0, 0, 0], flagged=[])
    with pytest.raises(LedgerError, match="RoundNotOpen"):
        contract.submit_commitment(clients[3], round=0, update_hash=b"\x05" * 32, num_samples=1)


def test_direct_submission_rules(ledger) -> None:
    contract, dep, agg, clients = ledger
    _open_round0(contract, agg, clients)
    contract.submit_commitment(clients[0], round=0, update_hash=b"\x05" * 32, num_samples=3)
    with pytest.raises(LedgerError, match="AlreadySubmitted"):
        contract.submit_commitment(clients[0], round=0, update_hash=b"\x06" * 32, num_samples=3)
    with pytest.raises(LedgerError, match="ZeroSamples"):
        contract.submit_commitment(clients[1], round=0, update_hash=b"\x05" * 32, num_samples=0)
    with pytest.raises(LedgerError, match="NotRegistered"):
        contract.submit_commitment(dep, round=0, update_hash=b"\x05" * 32, num_samples=3)


def test_forged_signature_fails_the_onchain_check(ledger) -> None:
    contract, _, agg, clients = ledger
    _open_round0(contract, agg, clients)
    signed = _signed(contract, clients, 0)
    # the aggregator claims client 0 committed what client 1 signed
    forged = dataclasses.replace(signed[1], client=clients[0].address)
    (rec,) = contract.post_commitments(agg, round=0, signed=[forged])
    assert rec.client == clients[0].address
    assert contract.verify_commitment(rec) is False
