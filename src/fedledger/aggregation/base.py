"""The aggregation interface: pure functions over an (n, d) update tensor plus weights.

A rule is ``fn(updates, weights, *, ctx, **params) -> AggregationResult``.  ``updates`` is
(n, d) float32 (one flat update per row), ``weights`` is (n,) float32 (sample counts, not
normalised).  Rules never touch the chain, the store or the CLI.  Every rule reports which
clients it excluded or down-weighted, so that the engine can record it on-chain and the auditor
can recompute it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from fedledger.aggregation._common import shares
from fedledger.aggregation.registry import RULES
from fedledger.errors import ConfigError


@dataclass(frozen=True)
class AggregationContext:
    """What a rule may know besides the updates.

    ``generator`` is seeded from (run seed, round) so that noisy rules are reproducible by the
    auditor.  ``reference`` is a server-side update (FLTrust's root-data update), ``global_params``
    the current global model as a flat vector, ``history`` per-row cross-round state (FoolsGold's
    update sums) that the engine keeps between rounds.
    """

    round: int = 0
    generator: torch.Generator | None = None
    reference: torch.Tensor | None = None
    global_params: torch.Tensor | None = None
    history: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AggregationResult:
    """Output of a rule.

    aggregate: (d,) the aggregated update.
    weights:   (n,) each client's effective share in ``aggregate`` (sums to 1 for averaging
               rules; zeros for excluded clients; for median-like rules, the share of
               coordinates that came from the client, or uniform over the kept clients).
    excluded:  indices of clients the rule dropped (flagged) this round, sorted.
    scores:    optional (n,) per-client score the rule used (distance, trust, similarity).
    state:     optional new cross-round state (e.g. FoolsGold's per-client history), keyed like
               ``AggregationContext.history``; the engine keeps it and passes it back next round.
    """

    aggregate: torch.Tensor
    weights: torch.Tensor
    excluded: tuple[int, ...] = ()
    scores: torch.Tensor | None = None
    state: dict[str, Any] | None = None


class AggregationRule(Protocol):
    def __call__(
        self, updates: torch.Tensor, weights: torch.Tensor, *, ctx: AggregationContext
    ) -> AggregationResult: ...


Precondition = Callable[[int, Mapping[str, Any]], None]


@dataclass(frozen=True)
class RuleSpec:
    fn: Callable[..., AggregationResult]
    check: Precondition | None = None


def register_rule(
    name: str, *, check: Precondition | None = None
) -> Callable[[Callable[..., AggregationResult]], Callable[..., AggregationResult]]:
    """Register a rule function under ``name``; ``check(n, params)`` raises ConfigError when the
    rule cannot run with n clients per round (e.g. Bulyan needs n >= 4f + 3)."""

    def deco(fn: Callable[..., AggregationResult]) -> Callable[..., AggregationResult]:
        RULES.register(name)(RuleSpec(fn=fn, check=check))
        return fn

    return deco


def create_rule(
    name: str, params: Mapping[str, Any] | None = None, *, num_clients: int
) -> AggregationRule:
    """Validate ``params`` against the rule's keyword arguments and its precondition, at
    configuration time, and return a callable ``(updates, weights, *, ctx)``."""
    spec = RULES.get(name)
    params = dict(params or {})
    sig = inspect.signature(spec.fn)
    accepted = {
        p.name
        for p in sig.parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name != "ctx"
    }
    unknown = sorted(set(params) - accepted)
    if unknown:
        raise ConfigError(
            f"aggregation rule {name!r} got unknown parameter(s) {unknown}; "
            f"it accepts: {sorted(accepted) or 'none'}"
        )
    if spec.check is not None:
        spec.check(num_clients, params)

    def rule(
        updates: torch.Tensor, weights: torch.Tensor, *, ctx: AggregationContext
    ) -> AggregationResult:
        return spec.fn(updates, weights, ctx=ctx, **params)

    return rule


def rule_names() -> list[str]:
    return RULES.names()


def normalise_weights(weights: torch.Tensor) -> torch.Tensor:
    """(n,) non-negative weights -> float32 shares summing to 1 (uniform when all are zero)."""
    return shares(weights).to(torch.float32)
