"""Attacks on how FedLedger runs rounds, by its own participants, on the embedded py-evm chain.

Each test names who attacks and what stops it, and asserts the contract's exact custom error
(with its key arguments) or the exact event. The groups:

* Self-submission (clients and outsiders): only a selected client, once, inside the window.
* Timing (the aggregator racing the clients): the submission window, checked at its edges.
* Finalization (a dishonest aggregator): one known outcome per commitment, flags only for
  clients that committed, each once.
* Round order and selection (a dishonest aggregator): one round at a time, on the current
  model, within clientsPerRound, never an excluded or unknown client.
* Roles (outsiders, clients, the requester, the aggregator): AccessControl on every
  privileged call.
* Liveness (a stalling aggregator): anyone aborts an overdue round; the model is unchanged.
* Registration and deployment (the requester): no zero, repeated or aggregator addresses, no
  run aggregated by its own requester.

Forged commitments, bad batches and the halt are in test_contract_attacks.py.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace

import pytest
from attack_helpers import ADMIN_ROLE, AGGREGATOR_ROLE, entry, err, post_batch, wide_fed
from eth_abi import encode
from ledger_fixtures import H0, make_fed

from fedledger.errors import LedgerError
from fedledger.ledger.contract import (
    PARAMS_ABI,
    FedLedgerContract,
    _revert_data,
    decode_custom_error,
    load_artifact,
    pack_addresses,
)


@pytest.fixture()
def fed():
    return wide_fed()


def window_end(fed) -> int:
    return int(fed.contract.round_info(fed.round)["window_end"])


# ====================================================================== self-submission
def test_only_a_selected_uncommitted_client_may_submit(fed) -> None:
    """Client 3 (registered, not selected), an outsider (not registered) and client 0
    (already posted) try to record a commitment themselves."""
    fed.open([0, 1, 2])
    post_batch(fed, [fed.signed(0)])
    h = bytes(32)
    with pytest.raises(LedgerError, match=err("FedLedgerNotSelected", round=0, client=3)):
        fed.contract.submit_commitment(fed.clients[3], round=0, update_hash=h, num_samples=5)
    with pytest.raises(
        LedgerError, match=err("FedLedgerNotRegistered", client=fed.outsider.address)
    ):
        fed.contract.submit_commitment(fed.outsider, round=0, update_hash=h, num_samples=5)
    with pytest.raises(LedgerError, match=err("FedLedgerDuplicateCommitment", round=0, client=0)):
        fed.contract.submit_commitment(fed.clients[0], round=0, update_hash=h, num_samples=5)
    fed.contract.submit_commitment(fed.clients[1], round=0, update_hash=h, num_samples=5)
    with pytest.raises(LedgerError, match=err("FedLedgerDuplicateCommitment", round=0, client=1)):
        fed.contract.submit_commitment(fed.clients[1], round=0, update_hash=h, num_samples=7)


# ====================================================================== timing
def test_finalize_inside_the_window_is_refused(fed) -> None:
    """The aggregator finalizes in the window's last block, before a left-out client could
    submit; one block later it may."""
    fed.open()
    post_batch(fed, [fed.signed(0)])
    end = window_end(fed)
    fed.chain.mine_to(end - 1)  # the next transaction runs in block `end`
    with pytest.raises(LedgerError, match=err("FedLedgerWindowOpen", round=0, windowEnd=end)):
        fed.finalize()
    fed.chain.mine_to(end)  # (a no-op: the refused transaction was mined in block `end`)
    fed.finalize()


def test_nothing_is_recorded_after_the_window(fed) -> None:
    """A client submits in the window's last block (accepted, without extending it); one block
    later a client's submission and the aggregator's post are both refused."""
    fed.open()
    post_batch(fed, [fed.signed(0)])
    end = window_end(fed)
    fed.chain.mine_to(end - 1)
    fed.contract.submit_commitment(fed.clients[1], round=0, update_hash=bytes(32), num_samples=5)
    assert window_end(fed) == end  # a client cannot keep the window open
    with pytest.raises(LedgerError, match=err("FedLedgerWindowClosed", round=0, windowEnd=end)):
        fed.contract.submit_commitment(
            fed.clients[2], round=0, update_hash=bytes(32), num_samples=5
        )
    with pytest.raises(LedgerError, match=err("FedLedgerWindowClosed", round=0, windowEnd=end)):
        post_batch(fed, [fed.signed(3)])


def test_nothing_is_recorded_after_finalize(fed) -> None:
    """A client (or the aggregator) adds a commitment to a finalized round, or to one that was
    never opened."""
    fed.full_round([0, 1])
    with pytest.raises(LedgerError, match=err("FedLedgerRoundNotOpen", round=0)):
        fed.contract.submit_commitment(
            fed.clients[2], round=0, update_hash=bytes(32), num_samples=5
        )
    with pytest.raises(LedgerError, match=err("FedLedgerRoundNotOpen", round=0)):
        post_batch(fed, [fed.signed(2, round=0, base=H0)], round=0)
    with pytest.raises(LedgerError, match=err("FedLedgerRoundNotOpen", round=1)):
        fed.contract.submit_commitment(
            fed.clients[2], round=1, update_hash=bytes(32), num_samples=5
        )


# ====================================================================== finalization
@pytest.mark.parametrize("given", [[0, 0, 0], [0, 0, 0, 0, 0], []])
def test_finalize_needs_one_outcome_per_commitment(fed, given) -> None:
    """The aggregator drops (or invents) a commitment's outcome to hide it from the record."""
    fed.open()
    post_batch(fed, [fed.signed(i) for i in range(4)])
    fed.close_window()
    with pytest.raises(
        LedgerError, match=err("FedLedgerOutcomesMismatch", round=0, recorded=4, given=len(given))
    ):
        fed.finalize(outcomes=given)


@pytest.mark.parametrize("code", [9, 15, 16, 0x89, 255])
def test_finalize_refuses_unknown_outcome_codes(fed, code) -> None:
    """The aggregator writes an outcome code that means nothing (9 is the first past
    MAX_OUTCOME = 8; the others probe the contract's word-at-a-time check)."""
    fed.open()
    post_batch(fed, [fed.signed(i) for i in range(4)])
    fed.close_window()
    with pytest.raises(
        LedgerError, match=err("FedLedgerUnknownOutcome", round=0, index=2, code=code)
    ):
        fed.finalize(outcomes=[0, 8, code, 1])
    fed.finalize(outcomes=[0, 8, 7, 1])  # 8 is the largest known code


def test_flags_must_be_ascending_and_of_committed_clients(fed) -> None:
    """The aggregator double-flags client 2 (twice the reputation loss), flags client 3 who
    did not commit this round, or flags an unknown index."""
    fed.open()
    post_batch(fed, [fed.signed(i) for i in range(3)])
    fed.close_window()
    with pytest.raises(LedgerError, match=err("FedLedgerNotAscending", round=0, position=1)):
        fed.finalize(flagged=[2, 2])
    with pytest.raises(LedgerError, match=err("FedLedgerNotAscending", round=0, position=1)):
        fed.finalize(flagged=[2, 1])
    with pytest.raises(LedgerError, match=err("FedLedgerFlagNotCommitted", round=0, client=3)):
        fed.finalize(flagged=[1, 3])
    with pytest.raises(LedgerError, match=err("FedLedgerUnknownClient", index=7)):
        fed.finalize(flagged=[7])
    fed.finalize(flagged=[1, 2])
    assert fed.contract.flags() == {0: [1, 2]} and fed.contract.flags_of(fed.addr(3)) == 0


# ====================================================================== round order, selection
def test_rounds_run_one_at_a_time_in_order_on_the_current_model(fed) -> None:
    """The aggregator opens a second round while one is open, skips a round, reopens a
    finished one, or opens on a model other than the one the last round produced."""
    fed.open()
    with pytest.raises(LedgerError, match=err("FedLedgerPreviousRoundOpen", round=0)):
        fed.contract.open_round(fed.aggregator, round=1, base_model_hash=H0, selected=[0])
    post_batch(fed, [fed.signed(0)])
    fed.close_window()
    new = fed.finalize()
    for rnd in (2, 0):
        with pytest.raises(
            LedgerError, match=err("FedLedgerRoundOutOfOrder", round=rnd, expected=1)
        ):
            fed.contract.open_round(fed.aggregator, round=rnd, base_model_hash=new, selected=[0])
    with pytest.raises(
        LedgerError, match=err("FedLedgerBaseModelMismatch", round=1, expected=new, given=H0)
    ):
        fed.contract.open_round(fed.aggregator, round=1, base_model_hash=H0, selected=[0])
    fed.open([0])
    assert fed.contract.round_count() == 2


def test_finalize_and_open_is_both_calls_or_neither(fed) -> None:
    """The aggregator finalizes a round and opens the next in one transaction: finalize's
    checks (window, outcomes) and open's (selection) both apply, on the model just finalized,
    and a refusal of either part leaves round 0 open and no round 1."""
    fed.open([0, 1])
    post_batch(fed, [fed.signed(0), fed.signed(1)])
    new = hashlib.sha256(b"model after 0").digest()

    def both(**kw: object) -> None:
        args = {"round": 0, "global_model_hash": new, "outcomes": [0, 0], "flagged": []}
        fed.contract.finalize_and_open(fed.aggregator, **{**args, "selected": [2, 3], **kw})

    end = window_end(fed)
    with pytest.raises(LedgerError, match=err("FedLedgerWindowOpen", round=0, windowEnd=end)):
        both()
    fed.close_window()
    with pytest.raises(
        LedgerError, match=err("FedLedgerOutcomesMismatch", round=0, recorded=2, given=1)
    ):
        both(outcomes=[0])
    with pytest.raises(LedgerError, match=err("FedLedgerUnknownClient", index=4)):
        both(selected=[1, 4])  # the opening fails: the finalization is undone with it
    assert fed.contract.round_info(0)["status"] == 1 and fed.contract.round_count() == 1
    assert fed.contract.current_model_hash() == H0
    both()
    assert fed.contract.round_info(0)["status"] == 2 and fed.contract.current_model_hash() == new
    assert fed.contract.round_info(1)["base_model_hash"] == new
    selected = fed.contract.contract.functions.isSelected
    assert selected(1, fed.addr(2)).call() and not selected(1, fed.addr(0)).call()


def test_selection_is_bounded_and_skips_excluded_and_unknown_clients() -> None:
    """The aggregator selects more than clientsPerRound, an excluded client (flagged maxFlags
    times), or an index nobody holds (in the first bitmap word or a later one)."""
    fed = make_fed(clients_per_round=2, max_flags=1)
    with pytest.raises(
        LedgerError, match=err("FedLedgerTooManySelected", round=0, limit=2, given=3)
    ):
        fed.open([0, 1, 2])
    for bad in (4, 300):
        with pytest.raises(LedgerError, match=err("FedLedgerUnknownClient", index=bad)):
            fed.open([0, bad])
    fed.open([0, 1])
    post_batch(fed, [fed.signed(0), fed.signed(1)])
    fed.close_window()
    fed.finalize(outcomes=[0, 6], flagged=[1])
    assert fed.contract.is_excluded(fed.addr(1))
    with pytest.raises(LedgerError, match=err("FedLedgerClientExcluded", round=1, client=1)):
        fed.open([0, 1])
    fed.open([0, 2])


# ====================================================================== roles
def _round_calls(fed):
    """The aggregator's calls, each made by ``who``."""
    c, f = fed.contract, fed.contract.contract.functions
    return {
        "openRound": lambda who: c.open_round(who, round=0, base_model_hash=H0, selected=[0]),
        "postCommitments": lambda who: c._send(
            who, f.postCommitments(0, entry(0)), gas=300_000, label="post", round=0
        ),
        "finalizeRound": lambda who: c.finalize_round(
            who, round=0, global_model_hash=H0, outcomes=[], flagged=[]
        ),
        "finalizeAndOpen": lambda who: c.finalize_and_open(
            who, round=0, global_model_hash=H0, outcomes=[], flagged=[], selected=[0]
        ),
        "selectCommittee": lambda who: c.select_committee(who, round=0, members=[0]),
        "postVotes": lambda who: c._send(
            who, f.postVotes(0, b""), gas=300_000, label="votes", round=0
        ),
    }


@pytest.mark.parametrize(
    "call",
    ["openRound", "postCommitments", "finalizeRound", "finalizeAndOpen", "selectCommittee", "postVotes"],
)
@pytest.mark.parametrize("who", ["outsider", "client", "admin"])
def test_only_the_aggregator_runs_rounds(fed, call, who) -> None:
    """An outsider, a registered client or the requester tries to run a round itself."""
    account = {"outsider": fed.outsider, "client": fed.clients[0], "admin": fed.admin}[who]
    if call != "openRound":
        fed.open()
    with pytest.raises(
        LedgerError,
        match=err(
            "AccessControlUnauthorizedAccount", account=account.address, neededRole=AGGREGATOR_ROLE
        ),
    ):
        _round_calls(fed)[call](account)


def test_only_the_admin_registers_clients_and_grants_roles(fed) -> None:
    """A client registers a sybil, the aggregator registers a puppet, an outsider grants itself
    the aggregator role, and the admin itself tries to become the aggregator too, or to make a
    client one: roles are fixed at deployment."""
    sybil = pack_addresses([fed.outsider.address])
    for who in (fed.clients[0], fed.aggregator):
        with pytest.raises(
            LedgerError,
            match=err(
                "AccessControlUnauthorizedAccount", account=who.address, neededRole=ADMIN_ROLE
            ),
        ):
            fed.contract._send(
                who,
                fed.contract.contract.functions.registerClients(sybil),
                gas=200_000,
                label="reg",
                round=None,
            )
    for who, to in (
        (fed.outsider, fed.outsider.address),
        (fed.admin, fed.admin.address),
        (fed.admin, fed.clients[1].address),
    ):
        with pytest.raises(LedgerError, match=err("FedLedgerRolesFixed")):
            grant = fed.contract.contract.functions.grantRole(AGGREGATOR_ROLE, to)
            fed.contract._send(who, grant, gas=100_000, label="grantRole", round=None)
    with pytest.raises(LedgerError, match=err("FedLedgerRolesFixed")):
        revoke = fed.contract.contract.functions.revokeRole(AGGREGATOR_ROLE, fed.aggregator.address)
        fed.contract._send(fed.admin, revoke, gas=100_000, label="revokeRole", round=None)
    assert fed.contract.client_count() == 4
    assert not fed.contract.has_role(AGGREGATOR_ROLE, fed.outsider.address)
    assert not fed.contract.has_role(AGGREGATOR_ROLE, fed.admin.address)
    assert fed.contract.has_role(AGGREGATOR_ROLE, fed.aggregator.address)


# ====================================================================== liveness
def test_anyone_aborts_an_overdue_round_and_the_model_stays(fed) -> None:
    """The aggregator stalls a round (keeps it open forever). Before its deadline nobody may
    abort it; after it an outsider does, the next round opens on the unchanged model, and the
    aborted round can no longer be finalized."""
    fed.open()
    post_batch(fed, [fed.signed(0)])
    deadline = int(fed.contract.round_info(0)["opened_at"]) + fed.contract.params().round_timeout
    fed.chain.mine_to(deadline - 1)  # the next transaction runs in block `deadline`
    with pytest.raises(
        LedgerError, match=err("FedLedgerDeadlineNotReached", round=0, deadline=deadline)
    ):
        fed.contract.abort_round(fed.outsider, round=0)
    fed.chain.mine_to(deadline)  # (a no-op: the refused call was mined in block `deadline`)
    fed.contract.abort_round(fed.outsider, round=0)
    assert fed.contract.rounds_aborted() == {0: fed.outsider.address}
    assert fed.contract.round_info(0)["status"] == 3 and fed.contract.current_model_hash() == H0
    with pytest.raises(LedgerError, match=err("FedLedgerRoundNotOpen", round=0)):
        fed.finalize()
    with pytest.raises(LedgerError, match=err("FedLedgerRoundNotOpen", round=0)):
        fed.contract.abort_round(fed.outsider, round=0)
    fed.round = 1
    fed.open()
    assert fed.contract.round_info(1)["base_model_hash"] == H0


# ====================================================================== registration, deployment
def test_registration_refuses_zero_repeated_and_aggregator_addresses(fed) -> None:
    """The requester registers the aggregator as a client (it would judge its own update), a
    client twice (two votes, two shares of the sample weight), or the zero address."""
    c, admin = fed.contract, fed.admin
    with pytest.raises(
        LedgerError, match=err("FedLedgerBadParameters", what="the aggregator cannot be a client")
    ):
        c.register_clients(admin, [fed.outsider.address, fed.aggregator.address])
    with pytest.raises(LedgerError, match=err("FedLedgerAlreadyRegistered", client=fed.addr(1))):
        c.register_clients(admin, [fed.addr(1)])
    with pytest.raises(
        LedgerError, match=err("FedLedgerAlreadyRegistered", client=fed.outsider.address)
    ):
        c.register_clients(admin, [fed.outsider.address, fed.outsider.address])
    with pytest.raises(LedgerError, match=err("FedLedgerZeroAddress")):
        c.register_clients(admin, ["0x" + "00" * 20])
    assert (
        c.client_count() == 4 and not c.contract.functions.indexOf(fed.outsider.address).call()[0]
    )


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ("admin", err("FedLedgerBadParameters", what="aggregator is the admin")),
        ("zero", err("FedLedgerZeroAddress")),
        (
            "timeout",
            err("FedLedgerBadParameters", what="roundTimeout must exceed submissionWindow"),
        ),
    ],
)
def test_deployment_refuses_an_admin_aggregator_and_bad_parameters(fed, change, error) -> None:
    """The requester deploys a run it aggregates itself (nobody independent judges it), with
    no aggregator, or with a round that can be aborted while its window is still open."""
    p = fed.contract.params()
    bad = {
        "admin": replace(p, aggregator=fed.admin.address),
        "zero": replace(p, aggregator="0x" + "00" * 20),
        "timeout": replace(p, round_timeout=p.submission_window),
    }[change]
    with pytest.raises(LedgerError, match="transaction 'deploy'"):
        FedLedgerContract.deploy(fed.chain, admin=fed.admin, params=bad)
    # the wrapper's deploy does not decode the constructor's revert on the embedded chain:
    # ask the contract itself, by running the same creation code as a call
    art = load_artifact()
    code = art["bytecode"] + encode([PARAMS_ABI], [bad.as_tuple()]).hex()
    with pytest.raises(Exception) as exc:  # noqa: B017 - web3 wraps reverts per provider
        fed.chain.w3.eth.call({"from": fed.admin.address, "data": code})
    assert re.fullmatch(error, decode_custom_error(art["abi"], _revert_data(exc.value)) or "")
