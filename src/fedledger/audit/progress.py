"""``fedledger audit``'s progress bar on stderr: the start-up (torch, web3 and py-evm load),
then the ledger's transactions replayed, then the rounds re-made.

Imports rich only, so that the bar is up before the auditor's imports begin; an
:data:`~fedledger.audit.auditor.AuditProgress` callback (``bar.update``) drives it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

STARTING = "loading torch, web3, py-evm"
STAGES = ("transactions", "rounds")


class AuditBar:
    """One line per stage; a disabled bar takes the same calls and shows nothing."""

    def __init__(self, progress: Progress | None) -> None:
        self._p = progress
        self._tasks: dict[str, TaskID] = {}
        self._start = progress.add_task(STARTING, total=None) if progress is not None else None

    def update(self, stage: str, done: int, total: int) -> None:
        """An :data:`~fedledger.audit.auditor.AuditProgress`: ``done`` of ``total`` in ``stage``."""
        if self._p is None:
            return
        task = self._tasks.get(stage)
        if task is None:
            if self._start is not None:  # the start-up line becomes the first stage's
                task, self._start = self._start, None
                self._p.reset(task, description=stage, total=total, completed=0)
            else:
                task = self._p.add_task(stage, total=total)
            self._tasks[stage] = task
        self._p.update(task, total=total, completed=done)

    def close(self) -> None:
        """No stage began (nothing to audit): the start-up line goes rather than stay
        spinning in the final picture."""
        if self._p is not None and self._start is not None:
            self._p.remove_task(self._start)
            self._start = None


@contextmanager
def audit_bar(console: Console, *, enabled: bool) -> Iterator[AuditBar]:
    """A live bar on ``console`` while the block runs (rich shows only the final state when
    the console is not a terminal); nothing when not ``enabled``."""
    if not enabled:
        yield AuditBar(None)
        return
    cols: tuple[Any, ...] = (
        TextColumn("[bold]audit"),
        SpinnerColumn(finished_text=" "),
        TextColumn("{task.description:<12}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*cols, console=console, transient=False) as p:
        bar = AuditBar(p)
        try:
            yield bar
        finally:
            bar.close()
