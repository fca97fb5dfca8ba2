"""Attacks on the validation committee, on the embedded py-evm chain.

The committee exists so that the aggregator alone cannot decide which commitments enter the
aggregation: every used commitment needs the signed accept votes of more than half of it.
The attackers and what stops them:

* the aggregator relaying votes: it cannot forge a member's vote, alter its accept bytes,
  replay it from another round or run, count it twice, or relay a non-member's vote, since
  each vote is an EIP-712 signature over (round, the round's final commitments digest,
  accept) checked on-chain by ecrecover;
* the aggregator naming the committee: once, after the window, of exactly the configured
  size, of registered and non-excluded clients;
* the aggregator finalizing: not without the configured committee, not with a commitment
  that lacks a strict majority;
* a late client: it cannot change the digest the votes bind once the window has closed.

Each test asserts the contract's exact custom error and its key arguments.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from attack_helpers import err, post_batch
from ledger_fixtures import make_fed

from fedledger.errors import LedgerError
from fedledger.ledger.signing import domain_separator, sign_vote

MEMBERS = [3, 4, 5]


def committee_fed(**kw):
    """Six clients, clients 0..2 selected, committee of three; a wide window, since every
    refused transaction is mined on the embedded chain and takes a block."""
    opts = {
        "num_clients": 6,
        "clients_per_round": 3,
        "committee_size": 3,
        "window": 10,
        "timeout": 40,
    }
    return make_fed(**{**opts, **kw})


def to_vote(fed, sel: list[int] | None = None) -> None:
    """Open round fed.round for clients 0..2, post them all, close the window."""
    fed.open(sel or [0, 1, 2])
    post_batch(fed, [fed.signed(i) for i in sel or [0, 1, 2]])
    fed.close_window()


@pytest.fixture()
def fed():
    """A round whose three commitments await the committee [3, 4, 5]."""
    f = committee_fed()
    to_vote(f)
    f.contract.select_committee(f.aggregator, round=0, members=MEMBERS)
    return f


def post_votes(fed, votes) -> None:
    fed.contract.post_votes(fed.aggregator, round=fed.round, votes=votes)


def digest(fed) -> bytes:
    return fed.contract.round_info(fed.round)["commitments_digest"]


# ====================================================================== forged votes
def test_a_vote_on_a_wrong_digest_or_round_is_refused(fed) -> None:
    """The aggregator relays member 3's vote signed over another commitments digest (a
    different set of commitments) or for another round number."""
    for rnd, d in ((0, bytes(32)), (1, digest(fed))):
        v = sign_vote(
            round=rnd,
            commitments_digest=d,
            accept=b"\x01\x01\x01",
            account=fed.clients[3],
            domain=fed.contract.domain,
        )
        with pytest.raises(
            LedgerError, match=err("FedLedgerBadVoteSignature", round=0, member=fed.addr(3))
        ):
            post_votes(fed, [v])
    assert fed.contract.accept_votes(0) == [] and fed.contract.votes() == {}


def test_a_vote_replayed_from_an_earlier_round_is_refused() -> None:
    """Round 0's committee accepted everything; in round 1 the aggregator relays those same,
    validly signed votes again instead of collecting new ones."""
    fed = committee_fed()
    to_vote(fed)
    fed.contract.select_committee(fed.aggregator, round=0, members=MEMBERS)
    old = [fed.vote(m, [1, 1, 1]) for m in MEMBERS]
    post_votes(fed, old)
    fed.finalize()
    to_vote(fed)
    fed.contract.select_committee(fed.aggregator, round=1, members=MEMBERS)
    with pytest.raises(
        LedgerError, match=err("FedLedgerBadVoteSignature", round=1, member=fed.addr(3))
    ):
        post_votes(fed, old)
    with pytest.raises(LedgerError, match=err("FedLedgerNotAccepted", round=1, index=0)):
        fed.finalize()


def test_a_vote_from_another_run_is_refused(fed) -> None:
    """Member 3's vote, signed over this very round and digest but under another deployment's
    EIP-712 domain (or another chain's), is relayed here."""
    for domain in (
        domain_separator(chain_id=fed.chain.chain_id, contract="0x" + "11" * 20),
        domain_separator(chain_id=fed.chain.chain_id + 1, contract=fed.contract.address),
    ):
        v = sign_vote(
            round=0,
            commitments_digest=digest(fed),
            accept=b"\x01\x01\x01",
            account=fed.clients[3],
            domain=domain,
        )
        with pytest.raises(
            LedgerError, match=err("FedLedgerBadVoteSignature", round=0, member=fed.addr(3))
        ):
            post_votes(fed, [v])


def test_a_forged_or_altered_vote_is_refused(fed) -> None:
    """The aggregator forges member 3's vote with its own accomplice's key (client 4 signs,
    the vote names member 3), or flips member 5's reject of commitment 2 into an accept."""
    forged = replace(fed.vote(4, [1, 1, 1]), member=fed.addr(3))
    with pytest.raises(
        LedgerError, match=err("FedLedgerBadVoteSignature", round=0, member=fed.addr(3))
    ):
        post_votes(fed, [forged])
    altered = replace(fed.vote(5, [1, 1, 0]), accept=b"\x01\x01\x01")
    with pytest.raises(
        LedgerError, match=err("FedLedgerBadVoteSignature", round=0, member=fed.addr(5))
    ):
        post_votes(fed, [fed.vote(3, [1, 1, 1]), altered])
    assert fed.contract.accept_votes(0) == []  # the honest vote in that call was not kept


def test_a_non_members_vote_is_refused(fed) -> None:
    """Client 0 (selected, but not on the committee) or an outsider votes, validly signed."""
    with pytest.raises(
        LedgerError, match=err("FedLedgerNotCommitteeMember", round=0, member=fed.addr(0))
    ):
        post_votes(fed, [fed.vote(0, [1, 1, 1])])
    v = sign_vote(
        round=0,
        commitments_digest=digest(fed),
        accept=b"\x01\x01\x01",
        account=fed.outsider,
        domain=fed.contract.domain,
    )
    with pytest.raises(
        LedgerError, match=err("FedLedgerNotCommitteeMember", round=0, member=fed.outsider.address)
    ):
        post_votes(fed, [v])


def test_a_member_votes_only_once(fed) -> None:
    """The aggregator counts member 3's accept twice to reach a majority: in a later call, or
    twice in the same call."""
    post_votes(fed, [fed.vote(3, [1, 1, 1])])
    with pytest.raises(
        LedgerError, match=err("FedLedgerAlreadyVoted", round=0, member=fed.addr(3))
    ):
        post_votes(fed, [fed.vote(3, [1, 1, 1])])
    with pytest.raises(
        LedgerError, match=err("FedLedgerAlreadyVoted", round=0, member=fed.addr(4))
    ):
        post_votes(fed, [fed.vote(4, [1, 1, 1]), fed.vote(4, [1, 1, 1])])
    assert fed.contract.accept_votes(0) == [1, 1, 1]
    with pytest.raises(LedgerError, match=err("FedLedgerNotAccepted", round=0, index=0)):
        fed.finalize()


def test_malformed_votes_are_refused(fed) -> None:
    """A member signs an accept byte of 2 (worth two votes in the tally), or the aggregator
    relays a vote that covers only two of the three commitments."""
    with pytest.raises(
        LedgerError, match=err("FedLedgerMalformedVote", round=0, member=fed.addr(3))
    ):
        post_votes(fed, [fed.vote(3, [2, 1, 1])])
    with pytest.raises(LedgerError, match=err("FedLedgerMalformedPacking", length=86, unit=87)):
        post_votes(fed, [fed.vote(3, [1, 1])])
    assert fed.contract.accept_votes(0) == []


# ====================================================================== naming the committee
def test_the_committee_is_named_once_after_the_window_at_its_size() -> None:
    """The aggregator names the committee before the window closed (before every commitment
    is in), names one of the wrong size, or renames it after seeing the first one."""
    fed = committee_fed()
    fed.open([0, 1, 2])
    post_batch(fed, [fed.signed(0)])
    end = int(fed.contract.round_info(0)["window_end"])
    with pytest.raises(LedgerError, match=err("FedLedgerWindowOpen", round=0, windowEnd=end)):
        fed.contract.select_committee(fed.aggregator, round=0, members=MEMBERS)
    fed.close_window()
    for members in ([3, 4], [2, 3, 4, 5]):
        with pytest.raises(
            LedgerError,
            match=err("FedLedgerCommitteeSize", round=0, expected=3, given=len(members)),
        ):
            fed.contract.select_committee(fed.aggregator, round=0, members=members)
    with pytest.raises(LedgerError, match=err("FedLedgerUnknownClient", index=6)):
        fed.contract.select_committee(fed.aggregator, round=0, members=[3, 4, 6])
    fed.contract.select_committee(fed.aggregator, round=0, members=MEMBERS)
    with pytest.raises(LedgerError, match=err("FedLedgerCommitteeAlreadySelected", round=0)):
        fed.contract.select_committee(fed.aggregator, round=0, members=[0, 1, 2])
    assert fed.contract.committees() == {0: MEMBERS}


def test_an_excluded_client_cannot_sit_on_the_committee() -> None:
    """Client 1, excluded for its flags, is named to the committee (to vote for itself)."""
    fed = committee_fed(max_flags=1)
    to_vote(fed)
    fed.contract.select_committee(fed.aggregator, round=0, members=MEMBERS)
    post_votes(fed, [fed.vote(m, [1, 1, 1]) for m in MEMBERS])
    fed.finalize(outcomes=[0, 6, 0], flagged=[1])
    to_vote(fed, [0, 2, 3])
    with pytest.raises(LedgerError, match=err("FedLedgerClientExcluded", round=1, client=1)):
        fed.contract.select_committee(fed.aggregator, round=1, members=[1, 4, 5])
    fed.contract.select_committee(fed.aggregator, round=1, members=[2, 4, 5])


def test_no_committee_means_no_committee_calls() -> None:
    """The aggregator of a run without a committee names one (to claim a committee's blessing)."""
    fed = make_fed(window=10)
    to_vote(fed)
    with pytest.raises(LedgerError, match=err("FedLedgerNoCommitteeConfigured")):
        fed.contract.select_committee(fed.aggregator, round=0, members=[3])


# ====================================================================== finalizing
def test_finalize_needs_the_committee_and_a_strict_majority() -> None:
    """The aggregator skips the committee it was configured with (no votes are ever posted),
    relays votes before naming it, or uses a commitment only half of the committee accepted
    (a committee of four: two accepts are no majority, three are)."""
    fed = committee_fed(num_clients=7, committee_size=4)
    to_vote(fed)
    with pytest.raises(LedgerError, match=err("FedLedgerCommitteeNotSelected", round=0)):
        fed.finalize()
    with pytest.raises(LedgerError, match=err("FedLedgerCommitteeNotSelected", round=0)):
        post_votes(fed, [fed.vote(3, [1, 1, 1])])
    fed.contract.select_committee(fed.aggregator, round=0, members=[3, 4, 5, 6])
    post_votes(
        fed,
        [
            fed.vote(3, [1, 1, 0]),
            fed.vote(4, [1, 1, 0]),
            fed.vote(5, [1, 0, 0]),
            fed.vote(6, [0, 1, 1]),
        ],
    )
    assert fed.contract.accept_votes(0) == [3, 3, 1]
    with pytest.raises(LedgerError, match=err("FedLedgerNotAccepted", round=0, index=2)):
        fed.finalize(outcomes=[0, 0, 0])
    fed.finalize(outcomes=[0, 0, 8], flagged=[2])  # rejecting needs no votes


def test_two_of_four_accepts_are_not_a_majority() -> None:
    """Exactly half of a committee of four accepts commitment 1: not enough."""
    fed = committee_fed(num_clients=7, committee_size=4)
    to_vote(fed)
    fed.contract.select_committee(fed.aggregator, round=0, members=[3, 4, 5, 6])
    post_votes(fed, [fed.vote(m, [1, int(m < 5), 0]) for m in (3, 4, 5, 6)])
    assert fed.contract.accept_votes(0) == [4, 2, 0]
    with pytest.raises(LedgerError, match=err("FedLedgerNotAccepted", round=0, index=1)):
        fed.finalize(outcomes=[0, 0, 3])
    fed.finalize(outcomes=[0, 3, 3])


def test_a_late_submission_cannot_void_the_votes() -> None:
    """Client 2 was left out; once the committee has voted on commitments 0 and 1 it tries to
    submit its own, which would change the digest the votes signed and void them. The window
    is closed, so the submission (and any late post) reverts and the votes still finalize."""
    fed = committee_fed()
    fed.open([0, 1, 2])
    post_batch(fed, [fed.signed(0), fed.signed(1)])
    end = int(fed.contract.round_info(0)["window_end"])
    fed.close_window()
    fed.contract.select_committee(fed.aggregator, round=0, members=MEMBERS)
    before = digest(fed)
    post_votes(fed, [fed.vote(m, [1, 1]) for m in MEMBERS])
    s = fed.signed(2)
    with pytest.raises(LedgerError, match=err("FedLedgerWindowClosed", round=0, windowEnd=end)):
        fed.contract.submit_commitment(
            fed.clients[2], round=0, update_hash=s.commitment.update_hash, num_samples=5
        )
    with pytest.raises(LedgerError, match=err("FedLedgerWindowClosed", round=0, windowEnd=end)):
        post_batch(fed, [s])
    assert digest(fed) == before and int(fed.contract.round_info(0)["num_commitments"]) == 2
    fed.finalize(outcomes=[0, 0])
    assert fed.contract.rounds_finalized()[0]["outcomes"] == [0, 0]
