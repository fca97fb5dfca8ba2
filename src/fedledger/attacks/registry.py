"""The attack registry: every built-in attack's name and the module that registers it.

Light on purpose (no torch): the ``[attack]`` section's name is checked against it while a
configuration is validated; an attack's module is imported when the attack is first built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fedledger.registry import Registry

if TYPE_CHECKING:
    from fedledger.attacks.base import Attack

# one attack per module, registered under the module's name
_NAMES = (
    *("alie", "backdoor", "feature_noise", "free_rider", "gaussian", "inject", "ipm"),
    *("label_flip", "min_max", "min_sum", "scaling", "sign_flip", "sybil"),
)
ATTACKS: Registry[type[Attack]] = Registry(
    "attack", builtins={name: f"fedledger.attacks.{name}" for name in _NAMES}
)
