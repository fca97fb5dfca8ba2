"""Replay a run's ledger and check everything it claims (fedledger/audit/auditor.py)."""

from fedledger.audit.auditor import audit_run
from fedledger.audit.report import AuditReport, Finding

__all__ = ["AuditReport", "Finding", "audit_run"]
