"""Adversaries: data poisoning, model poisoning, backdoors, free-riders and Sybils, one per
module, registered by name (see :mod:`fedledger.attacks.base` for the engine's calls).

The names below are imported on first use, so that ``fedledger.attacks.config`` (and the whole
configuration) loads without torch; an attack's module is imported when the attack is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fedledger._lazy import lazy_exports

if TYPE_CHECKING:
    from fedledger.attacks.backdoor import Backdoor, apply_trigger
    from fedledger.attacks.base import (
        Attack,
        AttackContext,
        attack_names,
        create_attack,
        register_attack,
    )
    from fedledger.attacks.config import AttackConfig, select_malicious
    from fedledger.attacks.metrics import (
        attack_success_rate,
        detection_counts,
        detection_scores,
        precision_recall_f1,
    )
    from fedledger.attacks.registry import ATTACKS

_EXPORTS = {
    "ATTACKS": "registry",
    "Attack": "base",
    "AttackConfig": "config",
    "AttackContext": "base",
    "Backdoor": "backdoor",
    "apply_trigger": "backdoor",
    "attack_names": "base",
    "attack_success_rate": "metrics",
    "create_attack": "base",
    "detection_counts": "metrics",
    "detection_scores": "metrics",
    "precision_recall_f1": "metrics",
    "register_attack": "base",
    "select_malicious": "config",
}
__all__ = [
    "ATTACKS",
    "Attack",
    "AttackConfig",
    "AttackContext",
    "Backdoor",
    "apply_trigger",
    "attack_names",
    "attack_success_rate",
    "create_attack",
    "detection_counts",
    "detection_scores",
    "precision_recall_f1",
    "register_attack",
    "select_malicious",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
