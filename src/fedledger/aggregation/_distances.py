"""Pairwise geometry of an (n, d) update batch, vectorised: one (n, d) @ (d, n) matmul each.

Squared distances use ‖x‖² + ‖y‖² − 2⟨x, y⟩ on the Gram matrix (float32 matmul, float64 from
there on), so the cost is one GEMM instead of n² vector differences.  Entry (i, j) depends on
x_i and x_j only, so an outlier row cannot spoil the distances between the other rows.  Passing
``center`` (a (d,) vector, e.g. the coordinate-wise median) subtracts it first: distances are
translation invariant, and centring on a robust point removes most of the cancellation when the
updates share a large common component (centring on the *mean* would let one huge outlier wipe
out every other row in float32, so no default centre is applied).
"""

from __future__ import annotations

import torch

# float32 overflows at ~3.4e38; a Gram entry above this is recomputed in float64
_FLOAT32_SAFE = 1e36


def gram_matrix(x: torch.Tensor, *, center: torch.Tensor | None = None) -> torch.Tensor:
    """(n, d) -> (n, n) float64 matrix of inner products ⟨x_i − c, x_j − c⟩ (c = 0 by default).

    One float32 GEMM; when an entry overflows float32 (an "arbitrarily large" Byzantine
    update), the GEMM is redone in float64."""
    x = x.to(torch.float32)
    if center is not None:
        x = x - center.to(torch.float32)
    gram = x @ x.T
    if not bool(torch.isfinite(gram).all()) or float(gram.abs().max()) > _FLOAT32_SAFE:
        x64 = x.to(torch.float64)
        return x64 @ x64.T
    return gram.to(torch.float64)


def sq_distances_from_gram(gram: torch.Tensor) -> torch.Tensor:
    """(n, n) Gram matrix -> (n, n) squared Euclidean distances, zero diagonal, clamped >= 0,
    exactly symmetric (a BLAS Gram need not be, and ties between mutual neighbours matter)."""
    gram = (gram + gram.T) * 0.5
    diag = torch.diagonal(gram)
    dist = (diag[:, None] + diag[None, :] - 2.0 * gram).clamp_min(0.0)
    dist.fill_diagonal_(0.0)
    return dist


def pairwise_sq_distances(x: torch.Tensor, *, center: torch.Tensor | None = None) -> torch.Tensor:
    """(n, d) -> (n, n) float64 squared Euclidean distances ‖x_i − x_j‖²."""
    return sq_distances_from_gram(gram_matrix(x, center=center))


def cosine_similarity_matrix(x: torch.Tensor, *, eps: float = 1e-12) -> torch.Tensor:
    """(n, d) -> (n, n) float64 cosine similarities; a zero row has similarity 0 to every row
    (and 1 to itself)."""
    gram = gram_matrix(x)
    norms = torch.diagonal(gram).clamp_min(0.0).sqrt()
    denom = norms[:, None] * norms[None, :]
    sim = torch.where(denom > eps, gram / denom.clamp_min(eps), torch.zeros_like(gram))
    sim = sim.clamp(-1.0, 1.0)
    sim.fill_diagonal_(1.0)
    return sim


def row_norms(x: torch.Tensor) -> torch.Tensor:
    """(n, d) -> (n,) float64 Euclidean norms of the rows (recomputed in float64 on overflow)."""
    norms = torch.linalg.vector_norm(x.to(torch.float32), dim=1).to(torch.float64)
    if not bool(torch.isfinite(norms).all()):
        norms = torch.linalg.vector_norm(x.to(torch.float64), dim=1)
    return norms
