"""The Python API: run an experiment from code and get a typed result back.

    import fedledger

    cfg = fedledger.load_config("examples/quickstart.toml", ["federation.rounds=3"])
    result = fedledger.run(cfg, on_round=lambda r: print(r.round, r.accuracy))
    result.final_accuracy, result.global_model_hash, result.model  # an eval-mode nn.Module

``run`` prints nothing unless ``progress=True`` (the library's log records go to the
``"fedledger"`` logger, which has no handler of its own: configure :mod:`logging` to see them).
Without ``out`` the run still writes its records (the chain's transactions, the blob store,
the CSVs) — into a temporary directory that is removed when ``run`` returns; with ``out`` they
stay there, and ``fedledger audit OUT`` (or :meth:`RunResult.audit`) checks them. The
command line (``fedledger run``) is this function with ``out`` set.
"""

from __future__ import annotations

import csv
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fedledger.config import ExperimentConfig, config_from_dict, load_config

if TYPE_CHECKING:
    import torch

    from fedledger.audit.report import AuditReport
    from fedledger.engine.rounds import Hooks

__all__ = ["RoundResult", "RunResult", "run"]


@dataclass(frozen=True)
class RoundResult:
    """One round as metrics.csv records it: the central test accuracy and loss after the
    round, how many updates were used, rejected and flagged; ``row`` is the whole row (with
    the attack, network and strategy columns the run has)."""

    round: int
    accuracy: float
    loss: float
    num_used: int
    num_rejected: int
    num_flagged: int
    row: Mapping[str, Any] = field(repr=False)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> RoundResult:
        def num(key: str, kind: type = float) -> Any:
            v = row.get(key)
            return kind(v) if v not in (None, "") else (float("nan") if kind is float else 0)

        return cls(
            round=int(row["round"]),
            accuracy=num("accuracy"),
            loss=num("loss"),
            num_used=num("num_used", int),
            num_rejected=num("num_rejected", int),
            num_flagged=num("num_flagged", int),
            row=dict(row),
        )


@dataclass(frozen=True)
class RunResult:
    """What a run produced. ``summary`` is summary.json's content; ``rounds`` the metrics rows
    in order; ``model`` the final global model (eval mode); ``run_dir`` where the records are,
    or None when the run went to a temporary directory."""

    config: ExperimentConfig
    summary: Mapping[str, Any]
    rounds: list[RoundResult]
    model: torch.nn.Module = field(repr=False)
    run_dir: Path | None

    @property
    def final_accuracy(self) -> float:
        return float(self.summary["final_accuracy"])

    @property
    def global_model_hash(self) -> str:
        """SHA-256 (hex) of the final model's safetensors bytes, as recorded on the ledger."""
        return str(self.summary["global_model_hash"])

    def audit(self, *, url: str | None = None) -> AuditReport:
        """``fedledger audit`` of the run directory (a run kept in ``out`` only)."""
        if self.run_dir is None:
            from fedledger.errors import AuditError

            raise AuditError("this run went to a temporary directory: pass out= to audit it")
        from fedledger.audit import audit_run

        return audit_run(self.run_dir, url=url)


ConfigLike = ExperimentConfig | Mapping[str, Any] | str | Path


def as_config(config: ConfigLike) -> ExperimentConfig:
    """An ExperimentConfig from a config, a mapping shaped like the TOML, or a TOML file."""
    if isinstance(config, ExperimentConfig):
        return config
    if isinstance(config, Mapping):
        return config_from_dict(dict(config), source="the mapping passed to fedledger.run")
    return load_config(config)


def run(
    config: ConfigLike,
    *,
    out: str | Path | None = None,
    on_round: Callable[[RoundResult], None] | None = None,
    progress: bool = False,
    overwrite: bool = False,
    resume: bool = False,
    hooks: Hooks | None = None,
) -> RunResult:
    """Run one experiment.

    Parameters
    ----------
    config
        An :class:`~fedledger.config.ExperimentConfig`, a mapping shaped like the TOML file,
        or the path of a TOML file.
    out
        The run directory to keep (new or empty; ``overwrite`` replaces an earlier run there).
        None: a temporary directory, removed before ``run`` returns.
    on_round
        Called with each round's :class:`RoundResult` as soon as the round is recorded.
    progress
        Show the label histogram and the progress bar on stderr.
    resume
        ``out`` holds an interrupted run of this config: go on from its last recorded round
        (the final model is the one an uninterrupted run gives; see
        :mod:`fedledger.engine.resume` for what can be resumed).

    Raises
    ------
    fedledger.errors.FedLedgerError
        A ConfigError, DataError, LedgerError... with a message saying what to change.
    """
    from fedledger.engine.experiment import run_experiment
    from fedledger.engine.predict import load_model

    cfg = as_config(config)
    callback = None if on_round is None else (lambda row: on_round(RoundResult.from_row(row)))

    def go(run_dir: Path, keep: bool) -> RunResult:
        summary = run_experiment(
            cfg,
            out=run_dir,
            hooks=hooks,
            progress=progress,
            overwrite=overwrite,
            on_round=callback,
            resume=resume,
        )
        # the config the run resolved (a task's participation fills in who joined)
        recorded = config_from_dict(_toml_table(run_dir / "config.toml"))
        return RunResult(
            config=recorded,
            summary=summary,
            rounds=_read_rounds(run_dir / "metrics.csv"),
            model=load_model(run_dir, cfg=recorded),
            run_dir=run_dir if keep else None,
        )

    if out is not None:
        return go(Path(out), keep=True)
    if resume:
        from fedledger.errors import ConfigError

        raise ConfigError("resume=True needs out=, the run directory to go on with")
    with tempfile.TemporaryDirectory(prefix="fedledger-run-") as tmp:
        return go(Path(tmp) / "run", keep=False)


def _toml_table(path: Path) -> dict[str, Any]:
    import tomllib

    return tomllib.loads(path.read_text(encoding="utf-8"))


def _read_rounds(path: Path) -> list[RoundResult]:
    with path.open(newline="", encoding="utf-8") as fh:
        return [RoundResult.from_row(r) for r in csv.DictReader(fh)]
