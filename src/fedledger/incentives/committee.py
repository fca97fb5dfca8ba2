"""Committee scores: the share of the round's committee members that accepted each commitment
(the votes the contract records, one accept bit per member and commitment)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def committee_scores(votes: Sequence[Sequence[int]], *, num_commitments: int) -> np.ndarray:
    """(num_commitments,) float64 in [0, 1]: for each commitment, the fraction of the members'
    vote rows (each ``num_commitments`` bits, 1 = accept) that accept it; all 0 when nobody
    voted."""
    if num_commitments < 0:
        raise ValueError(f"num_commitments must be >= 0, got {num_commitments}")
    rows = np.asarray(votes, dtype=np.int64).reshape(-1, num_commitments)
    if rows.size and not np.isin(rows, (0, 1)).all():
        raise ValueError("a vote is 0 (reject) or 1 (accept) per commitment")
    if rows.shape[0] == 0:
        return np.zeros(num_commitments, dtype=np.float64)
    return rows.mean(axis=0).astype(np.float64)
