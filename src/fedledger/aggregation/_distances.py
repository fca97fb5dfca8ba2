"""Pairwise geometry of an (n, d) update batch, vectorised: one (n, d) @ (d, n) matmul each.

Squared distances use ‖x‖² + ‖y‖² − 2⟨x, y⟩ on the Gram matrix (float32 matmul, float64 from
there on), so the cost is one GEMM instead of n² vector differences.  The Gram form cancels:
its error is ~1e-7 of ‖x‖² + ‖y‖², not of ‖x − y‖².  Federated updates share a large common
component (every row is c + s_i with ‖c‖ ≫ ‖s_i‖), so on the raw rows the float32 error swamps
the distances and Krum / Multi-Krum / Bulyan pick the wrong updates.  Distances are translation
invariant, so ``pairwise_sq_distances`` removes the common part first:

* it centres the rows on the coordinate-wise (lower) median, a point inside the data that an
  outlier cannot drag away: while fewer than half the rows are Byzantine, every coordinate of the
  centre lies within the honest rows' range, so an honest row's centred norm is bounded by the
  honest spread.  The *mean* would not do: one row of norm 1e30 moves it by 1e30 / n and every
  centred row then carries that huge component.  Nor would a fixed row (the first one, say),
  which may itself be the outlier.  The median is an actual row value per coordinate, so the
  float32 subtraction is exact for the rows close to it (Sterbenz).
* it then refines, in float64, the pairs that still cancel: a pair whose float32 distance is
  below 1/``_MAX_CANCELLATION`` of ‖x_i − m‖² + ‖x_j − m‖² (a tight cluster far from the
  median, duplicated Byzantine updates) gets its Gram block recomputed from the float64 centred
  rows of the rows involved (one more, smaller GEMM).  On ordinary batches nothing is flagged
  and the float32 GEMM is the only one.

An update large enough to overflow the float32 Gram (an "arbitrarily large" Byzantine update)
has the whole GEMM redone in float64; that row cannot move the median, so the other rows keep
their precision.  ``gram_matrix`` itself centres only when given ``center`` (cosine similarities
are not translation invariant).
"""

from __future__ import annotations

import numpy as np
import torch

from fedledger.aggregation._common import reduce_columns

# float32 overflows at ~3.4e38; a Gram entry above this is recomputed in float64
_FLOAT32_SAFE = 1e36
# a float32 Gram entry is accurate to ~3e-7 (d = 1e4) .. 3e-6 (d = 4e6) of ‖a‖‖b‖; a pair whose
# squared distance is below (‖a‖² + ‖b‖²) / 16 is refined in float64, which keeps every distance
# within ~1e-4 relative (ordinary batches have ‖a‖² + ‖b‖² ≈ ‖a − b‖² after median centring)
_MAX_CANCELLATION = 16.0


def _lower_median_block(block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = block.shape[1]
    k = (n - 1) // 2
    return np.partition(block, k, axis=1)[:, k], np.zeros(n, dtype=np.int64)


def robust_center(x: torch.Tensor) -> torch.Tensor:
    """(n, d) -> (d,) float32 coordinate-wise lower median: per coordinate, an actual value of
    one of the rows (NaNs sort last); non-finite entries of the centre are replaced by 0."""
    x32 = x.detach().to(torch.float32)
    if x32.device.type == "cpu":
        center = reduce_columns(x32.contiguous(), _lower_median_block)[0]
    else:
        center = torch.nanmedian(x32, dim=0).values
    return torch.where(torch.isfinite(center), center, torch.zeros_like(center))


def _centred(x: torch.Tensor, center: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor:
    y = x.to(dtype)
    return y if center is None else y - center.to(dtype)


def _gram(x: torch.Tensor, center: torch.Tensor | None) -> tuple[torch.Tensor, bool]:
    """(float64 Gram of the centred rows, whether it was computed in float64)."""
    y = _centred(x, center, torch.float32)
    gram = y @ y.T
    if not bool(torch.isfinite(gram).all()) or float(gram.abs().max()) > _FLOAT32_SAFE:
        y64 = _centred(x, center, torch.float64)
        return y64 @ y64.T, True
    return gram.to(torch.float64), False


def gram_matrix(x: torch.Tensor, *, center: torch.Tensor | None = None) -> torch.Tensor:
    """(n, d) -> (n, n) float64 matrix of inner products ⟨x_i − c, x_j − c⟩ (c = 0 by default).

    One float32 GEMM; when an entry overflows float32 (an "arbitrarily large" Byzantine
    update), the GEMM is redone in float64."""
    return _gram(x, center)[0]


def sq_distances_from_gram(gram: torch.Tensor) -> torch.Tensor:
    """(n, n) Gram matrix -> (n, n) squared Euclidean distances, zero diagonal, clamped >= 0,
    exactly symmetric (a BLAS Gram need not be, and ties between mutual neighbours matter)."""
    gram = (gram + gram.T) * 0.5
    diag = torch.diagonal(gram)
    dist = (diag[:, None] + diag[None, :] - 2.0 * gram).clamp_min(0.0)
    dist.fill_diagonal_(0.0)
    return dist


def pairwise_sq_distances(x: torch.Tensor, *, center: torch.Tensor | None = None) -> torch.Tensor:
    """(n, d) -> (n, n) float64 squared Euclidean distances ‖x_i − x_j‖².

    The rows are centred on ``center`` (default: ``robust_center(x)``, the coordinate-wise
    median) before the Gram GEMM, and pairs that still cancel in float32 are recomputed in
    float64 (see the module docstring)."""
    if center is None:
        center = robust_center(x)
    gram, exact = _gram(x, center)
    dist = sq_distances_from_gram(gram)
    if exact or dist.shape[0] < 2:
        return dist
    diag = torch.diagonal(gram).clamp_min(0.0)
    cancels = dist * _MAX_CANCELLATION < diag[:, None] + diag[None, :]
    cancels.fill_diagonal_(False)
    if not bool(cancels.any()):
        return dist
    rows = torch.nonzero(cancels.any(dim=1)).flatten()
    y64 = _centred(x[rows], center, torch.float64)
    block = sq_distances_from_gram(y64 @ y64.T)
    dist[rows[:, None], rows[None, :]] = block
    return dist


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
