"""Adversaries: data poisoning, model poisoning, backdoors, free-riders and Sybils, one per
module, registered by name (see :mod:`fedledger.attacks.base` for the engine's calls)."""

# importing an attack module registers it
from fedledger.attacks import alie as _alie  # noqa: F401
from fedledger.attacks import backdoor as _backdoor  # noqa: F401
from fedledger.attacks import feature_noise as _feature_noise  # noqa: F401
from fedledger.attacks import free_rider as _free_rider  # noqa: F401
from fedledger.attacks import gaussian as _gaussian  # noqa: F401
from fedledger.attacks import inject as _inject  # noqa: F401
from fedledger.attacks import ipm as _ipm  # noqa: F401
from fedledger.attacks import label_flip as _label_flip  # noqa: F401
from fedledger.attacks import min_max as _min_max  # noqa: F401
from fedledger.attacks import min_sum as _min_sum  # noqa: F401
from fedledger.attacks import scaling as _scaling  # noqa: F401
from fedledger.attacks import sign_flip as _sign_flip  # noqa: F401
from fedledger.attacks import sybil as _sybil  # noqa: F401
from fedledger.attacks.backdoor import Backdoor, apply_trigger
from fedledger.attacks.base import (
    ATTACKS,
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
