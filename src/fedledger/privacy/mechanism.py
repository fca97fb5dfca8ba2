"""The Gaussian mechanism of user-level DP-FedAvg (McMahan et al., "Learning Differentially
Private Recurrent Language Models", ICLR 2018, Algorithm 1): the server sums the clipped
updates, adds N(0, (z·C)² I) to the sum, and divides by a fixed denominator.

Estimator: McMahan et al.'s fixed-denominator f̃_f = (Σ_k w_k clip(Δ_k)) / (q·W) with every
weight w_k = 1 (uniform, not sample-weighted: a sample count would let one client's weight,
and so its influence, grow without bound), so the denominator is q·N, the expected number of
clients per round. fedledger selects exactly m = q·N clients per round (protocol/selection.py),
so the denominator is m; a selected client that is absent or rejected adds nothing to the sum,
and the denominator stays m (it must not depend on the data).

The noise comes from a torch generator seeded from (run seed, round) under its own domain
("fedledger:dp-noise"), in float64, so that the audit re-creates it exactly. That makes the
noise public to anyone who knows the run seed (config.toml records it): this is a
*simulation* of the mechanism, for measuring utility against ε; the ε is what the mechanism
gives when its noise is secret (docs/privacy.md).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch

from fedledger.privacy.clipping import clip_updates


def noise_seed(*, seed: int, round: int) -> int:
    """The 64-bit seed of round ``round``'s noise in run ``seed``."""
    digest = hashlib.sha256(f"fedledger:dp-noise:{seed}:{round}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def gaussian_noise(dim: int, *, std: float, seed: int, round: int) -> torch.Tensor:
    """(dim,) float64 draws of N(0, std²), the same for the same (seed, round)."""
    gen = torch.Generator().manual_seed(noise_seed(seed=seed, round=round))
    return torch.randn(dim, generator=gen, dtype=torch.float64) * std


def noised_mean(
    updates: Sequence[torch.Tensor],
    *,
    dim: int,
    clip_norm: float,
    noise_multiplier: float,
    denominator: int,
    seed: int,
    round: int,
) -> torch.Tensor:
    """(Σ clip(Δ_k) + N(0, (z·C)² I)) / denominator, (dim,) float32; the sum and the noise in
    float64. With no update the result is the noise alone (the output must not reveal that
    nobody was used)."""
    if denominator < 1:
        raise ValueError(f"the denominator must be at least 1, got {denominator}")
    total = torch.zeros(dim, dtype=torch.float64)
    if len(updates):
        clipped = clip_updates(torch.stack(list(updates)), clip_norm=clip_norm)  # (n, d)
        total = clipped.to(torch.float64).sum(dim=0)
    noise = gaussian_noise(dim, std=noise_multiplier * clip_norm, seed=seed, round=round)
    return ((total + noise) / denominator).to(torch.float32)
