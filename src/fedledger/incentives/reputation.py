"""Beta reputation (Josang & Ismail, "The Beta Reputation System", 2002): after r rounds in
which a client's update was used and s in which it was rejected or flagged, its reputation is
the mean of Beta(r + 1, s + 1), (r + 1) / (r + s + 2); an optional forgetting factor weighs
round t of T by ``decay`` ** (T - 1 - t), so that old behaviour fades."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def beta_reputation(history: Sequence[Sequence[int]], *, decay: float = 1.0) -> np.ndarray:
    """(clients,) float64 in (0, 1) from ``history``: one row per round, one entry per client,
    1 = its update was used, -1 = rejected or flagged, 0 = not in the round."""
    if not 0.0 < decay <= 1.0:
        raise ValueError(f"decay must be in (0, 1], got {decay}")
    h = np.asarray(history, dtype=np.int64)
    if h.ndim != 2:
        raise ValueError("history must have one row per round and one column per client")
    if h.size and not np.isin(h, (-1, 0, 1)).all():
        raise ValueError("history entries are 1 (used), -1 (rejected or flagged) or 0 (absent)")
    age = np.arange(h.shape[0])[::-1]
    w = (decay**age)[:, None]
    good = np.sum(w * (h == 1), axis=0)
    bad = np.sum(w * (h == -1), axis=0)
    return (good + 1.0) / (good + bad + 2.0)
