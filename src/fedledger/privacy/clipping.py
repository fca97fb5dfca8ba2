"""Per-update L2 clipping, the first step of user-level DP-FedAvg (McMahan et al., "Learning
Differentially Private Recurrent Language Models", ICLR 2018, Algorithm 1 with fixed clipping,
their "flat clipping"): each client's update Δ_k becomes Δ_k · min(1, C / ‖Δ_k‖₂), so that one
client changes the sum of the clipped updates by at most C (added or removed) or 2C (replaced).

The bound holds for the float32 values that are summed: an update above C is scaled by
C / ‖Δ‖ · (1 − 2⁻²⁰), a margin far above float32's rounding of the product (2⁻²⁴ relative), so
that ‖clip(Δ)‖₂ ≤ C even after rounding. Inputs are left unmodified.
"""

from __future__ import annotations

import torch

MARGIN = 1.0 - 2.0**-20  # keeps the rounded float32 norm at or below C (module docstring)


def clip_factors(updates: torch.Tensor, *, clip_norm: float) -> torch.Tensor:
    """(n, d) -> (n,) float64: 1 for an update within ``clip_norm``, else C / ‖Δ‖ · MARGIN."""
    norms = torch.linalg.vector_norm(updates.to(torch.float64), dim=1)  # (n,)
    scale = clip_norm / norms.clamp_min(torch.finfo(torch.float64).tiny) * MARGIN
    return torch.where(norms > clip_norm, scale, torch.ones_like(norms))


def clip_updates(updates: torch.Tensor, *, clip_norm: float) -> torch.Tensor:
    """(n, d) float32 -> (n, d) float32, each row's L2 norm at most ``clip_norm``."""
    if clip_norm <= 0:
        raise ValueError(f"clip_norm must be positive, got {clip_norm}")
    factors = clip_factors(updates, clip_norm=clip_norm)  # (n,)
    return (updates.to(torch.float64) * factors[:, None]).to(torch.float32)
