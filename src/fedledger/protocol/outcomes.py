"""What happened to each commitment of a round, as recorded on-chain (one uint8 each).

0 means the update entered the aggregation rule (the rule may still exclude it, which flags
the client); every other code is a rejection reason. The codes are part of the ledger format:
never renumber them.
"""

from __future__ import annotations

from enum import IntEnum

USED = 0


class RejectReason(IntEnum):
    """Why the aggregator refused a committed update."""

    BLOB_MISSING = 1  # the client signed a commitment but no blob with its hash arrived
    HASH_MISMATCH = 2  # a blob arrived, but it does not hash to the signed commitment
    MALFORMED = 3  # not a safetensors file with exactly one tensor "delta"
    WRONG_SHAPE = 4
    WRONG_DTYPE = 5
    NON_FINITE = 6
    BAD_SAMPLE_COUNT = 7  # reserved: the contract now refuses a zero sample count itself
    COMMITTEE_REJECTED = 8
    # off-chain only: the contract refuses such a commitment, so it never gets an outcome
    BAD_SIGNATURE = 9


MAX_ONCHAIN_OUTCOME = int(RejectReason.COMMITTEE_REJECTED)


def outcome_name(code: int) -> str:
    if code == USED:
        return "USED"
    try:
        return RejectReason(code).name
    except ValueError:
        return f"unknown outcome {code}"
