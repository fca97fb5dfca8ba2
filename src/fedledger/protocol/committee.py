"""Committee validation, as in BFLC (Li et al., IEEE Network 2021) and VBFL (Chen et al. 2021).

Each round a seeded committee (fedledger.protocol.selection.select_committee), drawn from the
clients that do not train this round, scores
every candidate update on the members' own data: member m accepts update i when the loss of
(global + update_i) on m's data is at most (1 + tolerance) times the median over candidates.
A malicious member (one of the adversary's clients) votes the other way: it accepts the
attackers' updates and rejects the rest. The contract tallies the signed votes; an update is
used only with the votes of more than half of the committee, so a minority of malicious
members changes nothing.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fedledger.models import set_flat_params


@torch.no_grad()
def candidate_losses(
    model: torch.nn.Module,
    params: torch.Tensor,
    candidates: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
) -> torch.Tensor:
    """(k,) loss of params + candidates[i] on (x, y)."""
    model.eval()
    out = torch.empty(candidates.shape[0])
    for i in range(candidates.shape[0]):
        set_flat_params(model, params + candidates[i])
        out[i] = F.cross_entropy(model(x), y)
    model.train()
    return out


def honest_votes(losses: torch.Tensor, *, tolerance: float) -> list[int]:
    """1 for every candidate whose loss is within (1 + tolerance) of the median (finite only)."""
    finite = torch.isfinite(losses)
    if not bool(finite.any()):
        return [0] * losses.numel()
    med = float(losses[finite].median())
    return [
        int(bool(f) and float(v) <= (1 + tolerance) * med)
        for v, f in zip(losses, finite, strict=True)
    ]


def tally(votes: list[list[int]]) -> list[int]:
    """Accept counts per candidate."""
    return [sum(col) for col in zip(*votes, strict=True)] if votes else []


def accepted(counts: list[int], *, committee_size: int) -> list[bool]:
    """Majority rule, as the contract applies it: more than half of the committee."""
    return [2 * c > committee_size for c in counts]


def member_vote(
    model: torch.nn.Module,
    params: torch.Tensor,
    tensors: list[torch.Tensor | None],
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    tolerance: float,
) -> list[int]:
    """An honest member's vote on every commitment of a round (0 for those that failed the
    checks): ``tensors[i]`` is commitment i's checked update or None."""
    cand = [i for i, t in enumerate(tensors) if t is not None]
    vote = [0] * len(tensors)
    if cand:
        losses = candidate_losses(model, params, torch.stack([tensors[i] for i in cand]), x, y)  # type: ignore[misc]
        for i, v in zip(cand, honest_votes(losses, tolerance=tolerance), strict=True):
            vote[i] = v
    return vote
