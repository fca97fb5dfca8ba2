"""Shared core of Min-Max and Min-Sum (Shejwalkar & Houmansadr, "Manipulating the Byzantine:
Optimizing Model Poisoning Attacks and Defenses for Federated Learning", NDSS 2021).

The malicious update is p(γ) = μ − γ·δ (μ the benign mean, δ the perturbation direction:
unit vector μ/‖μ‖, coordinate std, or sign(μ)), with the largest γ that keeps p inside the
benign updates' spread.  The paper finds γ by binary search; here the distances are quadratics
in γ, ‖p(γ) − x_i‖² = ‖μ − x_i‖² − 2γ⟨δ, μ − x_i⟩ + γ²‖δ‖², so the largest feasible γ has a
closed form (exact, and one pass over the updates).
"""

from __future__ import annotations

from typing import Literal

import torch

Perturbation = Literal["unit_vec", "std", "sign"]


def direction(ref: torch.Tensor, mu: torch.Tensor, kind: Perturbation) -> torch.Tensor:
    """(b, d) float64 benign updates and their mean -> (d,) δ; the malicious update moves
    along −δ."""
    if kind == "unit_vec":
        norm = torch.linalg.vector_norm(mu)
        return mu / norm if norm > 0 else mu
    if kind == "std":
        return ref.std(dim=0, correction=0)
    return torch.sign(mu)


def _pairwise_sq(ref: torch.Tensor) -> torch.Tensor:
    sq = (ref * ref).sum(dim=1)
    return (sq[:, None] + sq[None, :] - 2.0 * ref @ ref.T).clamp_min(0.0)


def max_gamma(
    ref: torch.Tensor, mu: torch.Tensor, delta: torch.Tensor, objective: Literal["max", "sum"]
) -> float:
    """Largest γ >= 0 with  max_i ‖p − x_i‖² <= max_ij ‖x_i − x_j‖²  ("max", Min-Max) or
    Σ_i ‖p − x_i‖² <= max_i Σ_j ‖x_i − x_j‖²  ("sum", Min-Sum); γ = 0 is always feasible
    (μ = ``mu``, the mean of ``ref``)."""
    a = float(delta @ delta)
    if a == 0.0 or ref.shape[0] < 2:
        return 0.0
    centred = mu[None, :] - ref  # (b, d): μ − x_i
    c = (centred * centred).sum(dim=1)  # ‖μ − x_i‖²
    b = -2.0 * (centred @ delta)  # coefficient of γ
    pair = _pairwise_sq(ref)
    if objective == "max":
        threshold = float(pair.max())
        disc = (b * b - 4.0 * a * (c - threshold)).clamp_min(0.0)
        roots = (-b + disc.sqrt()) / (2.0 * a)
        return max(0.0, float(roots.min()))
    threshold = float(pair.sum(dim=1).max())
    # Σ_i b_i = 0 because μ is the mean, so Σ_i ‖p − x_i‖² = Σ c_i + bγ² with b = count · a
    slack = threshold - float(c.sum())
    return max(0.0, (slack / (ref.shape[0] * a)) ** 0.5) if slack > 0 else 0.0


def agr_agnostic_update(
    ref: torch.Tensor, kind: Perturbation, objective: Literal["max", "sum"]
) -> torch.Tensor:
    """(b, d) benign updates -> (d,) float32 malicious update μ − γ*·δ."""
    ref64 = ref.to(torch.float64)
    mu = ref64.mean(dim=0)
    delta = direction(ref64, mu, kind)
    gamma = max_gamma(ref64, mu, delta, objective)
    return (mu - gamma * delta).to(torch.float32)
