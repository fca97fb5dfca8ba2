"""Replay a run's ledger and check everything it claims (fedledger/audit/auditor.py).

The names below are imported on first use, so that ``fedledger audit`` can show its progress
bar while torch, web3 and py-evm load (fedledger/audit/progress.py imports neither).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fedledger.audit.auditor import AuditProgress, audit_run
    from fedledger.audit.report import AuditReport, Finding

_EXPORTS = {
    "AuditProgress": "auditor",
    "AuditReport": "report",
    "Finding": "report",
    "audit_run": "auditor",
}
__all__ = ["AuditProgress", "AuditReport", "Finding", "audit_run"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
