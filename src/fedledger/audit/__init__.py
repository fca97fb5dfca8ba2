"""Replay a run's ledger and check everything it claims (fedledger/audit/auditor.py).

The names below are imported on first use, so that ``fedledger audit`` can show its progress
bar while torch, web3 and py-evm load (fedledger/audit/progress.py imports neither).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fedledger._lazy import lazy_exports

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


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
