"""The value of a coalition of a round's clients, memoised and counted.

A scorer asks for v(S) for coalitions S of the round's n clients (0..n-1); :class:`Utility`
computes each one once (coalitions are keyed by bit mask) and counts how many distinct
coalitions it evaluated, the cost measure the Shapley approximations are compared by.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

from fedledger.aggregation.fedavg import weighted_mean
from fedledger.client.training import evaluate
from fedledger.errors import ConfigError

METRICS = ("accuracy", "neg_loss")


class Utility:
    """v(S) for coalitions S of ``players`` clients, from ``value(members)``, where
    ``members`` is the sorted tuple of the coalition's indices (empty for the empty one)."""

    def __init__(self, players: int, value: Callable[[tuple[int, ...]], float]) -> None:
        if not isinstance(players, int) or players < 1:
            raise ConfigError(f"a utility needs at least one player, got {players!r}")
        self.n = players
        self._value = value
        self._memo: dict[int, float] = {}

    @property
    def evaluations(self) -> int:
        """How many distinct coalitions (the empty one included) were evaluated so far."""
        return len(self._memo)

    @property
    def grand(self) -> int:
        """The bit mask of the grand coalition (every player)."""
        return (1 << self.n) - 1

    def of_mask(self, mask: int) -> float:
        """v of the coalition whose members are the set bits of ``mask``."""
        v = self._memo.get(mask)
        if v is None:
            if not 0 <= mask <= self.grand:
                raise ValueError(f"coalition mask {mask:#x} names players beyond {self.n}")
            members = tuple(i for i in range(self.n) if mask >> i & 1)
            v = float(self._value(members))
            self._memo[mask] = v
        return v

    def __call__(self, coalition: Iterable[int]) -> float:
        mask = 0
        for i in coalition:
            mask |= 1 << i
        return self.of_mask(mask)


def round_utility(
    model: torch.nn.Module,
    base_params: torch.Tensor,
    updates: torch.Tensor,
    weights: torch.Tensor,
    x_val: torch.Tensor,
    y_val: torch.Tensor,
    *,
    metric: str = "accuracy",
) -> Utility:
    """v(S) = metric on (x_val, y_val) of ``base_params`` plus the sample-weighted mean of the
    updates of S (FedAvg); v(empty) = the metric of ``base_params`` itself.

    ``updates``: (n, d) float32, one row per client of the round; ``weights``: (n,) sample
    counts; ``metric``: "accuracy" or "neg_loss" (minus the mean cross-entropy), higher is
    better either way."""
    if metric not in METRICS:
        raise ConfigError(f"unknown utility metric {metric!r}; expected one of {METRICS}")
    if updates.ndim != 2 or weights.shape != (updates.shape[0],):
        raise ValueError(
            f"updates must be (n, d) and weights (n,), got {tuple(updates.shape)} and "
            f"{tuple(weights.shape)}"
        )

    def value(members: tuple[int, ...]) -> float:
        params = base_params
        if members:
            idx = torch.tensor(members)
            params = base_params + weighted_mean(updates[idx], weights[idx])
        acc, loss = evaluate(model, params, x_val, y_val)
        return acc if metric == "accuracy" else -loss

    return Utility(int(updates.shape[0]), value)
