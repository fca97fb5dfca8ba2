"""Leave-one-out: a client's value is what the round loses without it, v(N) - v(N - i).
Cheap (n + 1 evaluations) but blind to redundancy: two clients with the same data both score
about zero (Ghorbani & Zou 2019, section 2)."""

from __future__ import annotations

import numpy as np

from fedledger.incentives.utility import Utility


def leave_one_out(u: Utility) -> np.ndarray:
    """(n,) float64: v(N) - v(N without i) for every player i."""
    full = u.of_mask(u.grand)
    return np.array([full - u.of_mask(u.grand & ~(1 << i)) for i in range(u.n)], dtype=np.float64)
