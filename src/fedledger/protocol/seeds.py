"""Seeded generators of the round protocol: every random choice of a run derives from its seed,
so that the engine and the auditor re-create the same streams."""

from __future__ import annotations

import hashlib

import torch


def derived_seed(*, seed: int, round: int, client: int) -> int:
    """A 64-bit seed for (run, round, client); client -1 is the aggregator."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{round}:{client}".encode()).digest()[:8], "big")


def client_generator(*, seed: int, round: int, client: int) -> torch.Generator:
    return torch.Generator().manual_seed(derived_seed(seed=seed, round=round, client=client))


def aggregation_generator(*, seed: int, round: int) -> torch.Generator:
    """The generator a (noisy) rule gets in a round; the auditor re-creates it."""
    return client_generator(seed=seed, round=round, client=-1)
