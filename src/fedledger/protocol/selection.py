"""Who trains in a round, and who sits on its committee: seeded draws the aggregator cannot grind.

Round r's draws use the *selection seed* keccak256(abi.encode(salt, r, baseModelHash)): the
contract computes the same value when the round opens (``FedLedger.selectionSeed``) and the
audit recomputes every draw from it. The base model's hash is fixed when round r-1 is
finalized, and every input of that hash is fixed by the clients' signed commitments and the
deterministic, audited aggregation rule, so the aggregator has no free choice that would steer
the next draw. The salt is derived from the run seed (recorded in config.toml, checked by the
audit against the contract's parameters).
"""

from __future__ import annotations

import hashlib

import numpy as np
from eth_utils import keccak


def selection_salt(seed: int) -> bytes:
    """The run's 32-byte selection salt (a contract parameter)."""
    return hashlib.sha256(f"fedledger:selection:{seed}".encode()).digest()


def selection_seed(*, salt: bytes, round: int, base_model_hash: bytes) -> bytes:
    """keccak256(abi.encode(salt, round, baseModelHash)), as ``FedLedger.selectionSeed``."""
    return keccak(salt + round.to_bytes(32, "big") + base_model_hash)


def seed_int(seed: bytes) -> int:
    return int.from_bytes(seed, "big")


def select_clients(
    *, seed: int, round: int, num_clients: int, k: int, eligible: list[int] | None = None
) -> list[int]:
    """Seeded choice of k distinct clients for a round, sorted; from ``eligible`` when given
    (clients excluded for their reputation are not eligible)."""
    pool = list(range(num_clients)) if eligible is None else sorted(eligible)
    k = min(k, len(pool))
    if k == len(pool):
        return pool
    rng = np.random.default_rng([seed, round, 0x5E1EC7])
    return sorted(pool[int(i)] for i in rng.choice(len(pool), size=k, replace=False))


def eligible_clients(flag_counts: list[int], max_flags: int | None) -> list[int] | None:
    """Clients still eligible under the reputation rule (None: everybody)."""
    if max_flags is None:
        return None
    return [c for c, n in enumerate(flag_counts) if n < max_flags]


def select_committee(
    *,
    seed: int,
    round: int,
    num_clients: int,
    size: int,
    trainers: list[int],
    eligible: list[int] | None = None,
) -> list[int]:
    """Seeded, rotating committee of min(size, eligible) members, preferring eligible clients
    that do not train this round."""
    pool_all = list(range(num_clients)) if eligible is None else sorted(eligible)
    busy = set(trainers)
    others = [c for c in pool_all if c not in busy]
    pool = others if len(others) >= size else pool_all
    rng = np.random.default_rng([seed, round, 0xC0111])
    return sorted(
        int(pool[i]) for i in rng.choice(len(pool), size=min(size, len(pool)), replace=False)
    )
