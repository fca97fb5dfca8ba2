"""Attack and detection metrics: attack success rate and detection precision / recall / F1."""

from __future__ import annotations

from collections.abc import Set

import torch


def attack_success_rate(
    predictions: torch.Tensor,
    labels: torch.Tensor,
    *,
    target_label: int,
    source_label: int | None = None,
) -> float:
    """Share of the eligible test inputs classified as ``target_label``.

    Backdoor (``source_label`` None): pass the predictions on the triggered test set and the
    inputs' true labels; inputs whose true label is the target do not count.  Targeted flip
    (``source_label`` set): pass predictions on the clean test set; only inputs of the source
    class count.  0.0 when no input is eligible.
    """
    if predictions.shape != labels.shape:
        raise ValueError(
            f"predictions {tuple(predictions.shape)} and labels {tuple(labels.shape)} differ"
        )
    eligible = labels != target_label if source_label is None else labels == source_label
    count = int(eligible.sum())
    if count == 0:
        return 0.0
    return float((predictions[eligible] == target_label).sum()) / count


def detection_counts(
    flagged: Set[int], malicious: Set[int], participants: Set[int]
) -> tuple[int, int, int]:
    """(true positives, false positives, false negatives) among this round's participants."""
    f = set(flagged) & set(participants)
    m = set(malicious) & set(participants)
    return len(f & m), len(f - m), len(m - f)


def precision_recall_f1(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    """From counts (summed over rounds for an overall figure).  Vacuous cases count as perfect:
    no flags -> precision 1; nobody to find -> recall 1; F1 is their harmonic mean (0 if
    either is 0)."""
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def detection_scores(
    flagged: Set[int], malicious: Set[int], participants: Set[int]
) -> tuple[float, float, float]:
    """Precision, recall and F1 of ``flagged`` against the ground-truth ``malicious`` clients,
    counting only ``participants``."""
    return precision_recall_f1(*detection_counts(flagged, malicious, participants))
