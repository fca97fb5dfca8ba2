"""What an audit found: findings with a severity, the round and client they concern, and the
check that made them; printable and as JSON (``fedledger audit --json``)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

Severity = Literal["error", "warning"]
MAX_ERRORS = 50  # an audit stops adding errors after this many


@dataclass(frozen=True)
class Finding:
    """``error``: the record is inconsistent or a party provably cheated; ``warning``: the
    record is consistent, but something a reader should know (an absent client, a rejection
    whose evidence is missing, a committee vote that disagrees with the member's own data)."""

    severity: Severity
    check: str
    message: str
    round: int | None = None
    client: int | None = None
    address: str | None = None

    @property
    def text(self) -> str:
        where = []
        if self.round is not None:
            where.append(f"round {self.round}")
        if self.client is not None:
            who = f"client {self.client}"
            where.append(f"{who} ({self.address})" if self.address else who)
        prefix = ", ".join(where)
        return f"{prefix}: {self.message}" if prefix else self.message


@dataclass
class AuditReport:
    run_dir: Path
    rounds: int = 0
    commitments: int = 0
    transactions: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def problems(self) -> list[str]:
        """The errors as text, in the order found."""
        return [f.text for f in self.errors]

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def full(self) -> bool:
        return len(self.errors) >= MAX_ERRORS

    def add(self, finding: Finding) -> None:
        if finding.severity == "error" and self.full:
            return
        self.findings.append(finding)

    def error(self, check: str, message: str, **where: object) -> None:
        self.add(Finding("error", check, message, **where))  # type: ignore[arg-type]

    def warning(self, check: str, message: str, **where: object) -> None:
        self.add(Finding("warning", check, message, **where))  # type: ignore[arg-type]

    def describe(self) -> str:
        head = (
            f"audited {self.run_dir}: {self.rounds} rounds, {self.commitments} commitments, "
            f"{self.transactions} transactions replayed"
        )
        lines = [head]
        if self.ok:
            lines.append(
                "OK: every signature, blob, aggregation and output is consistent with the ledger"
            )
        else:
            lines.append(f"FAILED: {len(self.errors)} inconsistency(ies); first:")
            lines += [f"  {'' if k == 0 else 'also: '}{e.text}" for k, e in enumerate(self.errors)]
        if self.warnings:
            lines.append(f"{len(self.warnings)} warning(s):")
            lines += [f"  {w.text}" for w in self.warnings[:20]]
            if len(self.warnings) > 20:
                lines.append(f"  ... {len(self.warnings) - 20} more (use --json for all)")
        return "\n".join(lines)

    def to_json(self) -> str:
        return json.dumps(
            {
                "run_dir": str(self.run_dir),
                "ok": self.ok,
                "rounds": self.rounds,
                "commitments": self.commitments,
                "transactions": self.transactions,
                "errors": len(self.errors),
                "warnings": len(self.warnings),
                "findings": [asdict(f) for f in self.findings],
            },
            indent=1,
        )
