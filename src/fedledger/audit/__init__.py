"""Replay a run's ledger and check it against its blob store."""

from fedledger.audit.auditor import AuditReport, audit_run

__all__ = ["AuditReport", "audit_run"]
