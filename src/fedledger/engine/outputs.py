"""What a run leaves in RUN_DIR: config.toml, clients.csv, preprocessing.json, metrics.csv,
rejected.csv, summary.json, accuracy.png; and the progress bar people watch meanwhile."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from fedledger.client.local import FEDERATED_METRICS
from fedledger.config import ExperimentConfig
from fedledger.data.datasets import Dataset
from fedledger.engine.checkpoint import write_atomic
from fedledger.protocol.network import NETWORK_COLUMNS

METRIC_COLUMNS = [
    "round",
    "accuracy",
    "loss",
    "train_loss",
    "wall_s",
    "round_s",
    "tx_count",
    "gas_used",
    "num_selected",
    "num_used",
    "num_rejected",
    "num_flagged",
    "num_absent",
]

ATTACK_COLUMNS = ["attack_success_rate", "detection_f1"]
PRIVACY_COLUMNS = ["epsilon"]  # [privacy]: ε (at privacy.delta) after the round, cumulative


class _Bar:
    def __init__(self, progress: Progress | None, task: Any) -> None:
        self._p, self._task = progress, task

    def advance(self, rnd: int, *, acc: float, loss: float) -> None:
        if self._p is not None:
            self._p.update(
                self._task, advance=1, status=f"round {rnd}  acc {acc:.4f}  loss {loss:.4f}"
            )


RoundCallback = Callable[[dict[str, Any]], None]


class RunOutputs:
    """``on_round(row)`` is called with each metrics row once it is written (its round is then
    on the ledger, when there is one)."""

    def __init__(
        self,
        out: Path,
        cfg: ExperimentConfig,
        *,
        on_round: RoundCallback | None = None,
        resume_after: int | None = None,
    ) -> None:
        """``resume_after``: the run in ``out`` goes on after this round; its rows of later
        rounds (and a row a kill cut short) are dropped and new rows appended."""
        self.out = out
        self.cfg = cfg
        self._on_round = on_round
        out.mkdir(parents=True, exist_ok=True)
        self.rows: list[dict[str, Any]] = []
        self.console = Console(stderr=True)
        if resume_after is not None:
            self._resume(resume_after)
            return
        write_atomic(out / "config.toml", cfg.to_toml().encode())
        self._metrics: TextIO = (out / "metrics.csv").open("w", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(
            self._metrics, fieldnames=self._columns(), extrasaction="ignore"
        )
        self._writer.writeheader()
        self._rejected: TextIO = (out / "rejected.csv").open("w", newline="", encoding="utf-8")
        self._rej_writer = csv.writer(self._rejected)
        self._rej_writer.writerow(["round", "client", "reason"])

    def _columns(self) -> list[str]:
        cfg = self.cfg
        columns = list(METRIC_COLUMNS)
        if cfg.attack is not None:
            columns += ATTACK_COLUMNS
        if cfg.evaluation is not None:
            columns += FEDERATED_METRICS
        if cfg.network is not None:
            columns += NETWORK_COLUMNS
        if cfg.privacy is not None:
            columns += PRIVACY_COLUMNS
        return columns

    def _resume(self, after: int) -> None:
        """Keep metrics.csv's and rejected.csv's complete lines of rounds <= ``after``, then
        append to them."""
        for name in ("metrics.csv", "rejected.csv"):
            path = self.out / name
            text = path.read_text(encoding="utf-8") if path.exists() else ""
            lines = text.splitlines(keepends=True)
            if lines and not lines[-1].endswith("\n"):
                lines.pop()  # cut short by the interruption
            kept = lines[:1] + [ln for ln in lines[1:] if _round_of(ln) <= after]
            write_atomic(path, "".join(kept).encode())
        with (self.out / "metrics.csv").open(newline="", encoding="utf-8") as fh:
            self.rows = [
                {k: _number(v) for k, v in r.items()} for r in csv.DictReader(fh)
            ]
        self._metrics = (self.out / "metrics.csv").open("a", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(
            self._metrics, fieldnames=self._columns(), extrasaction="ignore"
        )
        self._rejected = (self.out / "rejected.csv").open("a", newline="", encoding="utf-8")
        self._rej_writer = csv.writer(self._rejected)
        self.console = Console(stderr=True)

    def write_preprocessing(self, data: Dataset) -> None:
        """preprocessing.json: how raw features became the model's inputs (fitted on the
        training split), the feature columns, and the original label of each class index, so
        that new data can be prepared and predictions read back the same way."""
        record = {
            "dataset": data.name,
            "preprocessing": data.preprocessing.as_dict() if data.preprocessing else None,
            "feature_names": list(data.feature_names),
            "label_column": self.cfg.data.label_column if data.feature_names else None,
            "class_names": list(data.class_names),
            "input_shape": list(data.input_shape),
        }
        (self.out / "preprocessing.json").write_text(
            json.dumps(record, indent=1) + "\n", encoding="utf-8"
        )

    def write_clients(self, hist: np.ndarray, *, show: bool = True) -> None:
        """Each client's label histogram: clients.csv, and (``show``) a short table on the
        console."""
        with (self.out / "clients.csv").open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["client", "num_samples", *[f"class_{k}" for k in range(hist.shape[1])]])
            for i, row in enumerate(hist):
                w.writerow([i, int(row.sum()), *[int(v) for v in row]])
        if not show:
            return
        shown = min(len(hist), 12)
        lines = [
            f"client {i:>4}: n={int(hist[i].sum()):>5}  "
            + " ".join(f"{int(v):>4}" for v in hist[i])
            for i in range(shown)
        ]
        if len(hist) > shown:
            lines.append(f"... {len(hist) - shown} more in clients.csv")
        self.console.print("[bold]label histogram per client[/bold] (classes 0..K-1)")
        self.console.print("\n".join(lines), highlight=False)

    @contextmanager
    def progress(self, *, enabled: bool, total: int) -> Iterator[_Bar]:
        if not enabled:
            yield _Bar(None, None)
            return
        cols = (
            TextColumn("[bold]fedledger"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
        )
        with Progress(*cols, console=self.console, transient=False) as p:
            task = p.add_task("rounds", total=total, status="")
            yield _Bar(p, task)

    def add_round(self, row: dict[str, Any], rejected: dict[int, str]) -> None:
        self.rows.append(row)
        self._writer.writerow(row)
        self._metrics.flush()
        for cid, reason in rejected.items():
            self._rej_writer.writerow([row["round"], cid, reason])
        self._rejected.flush()
        if self._on_round is not None:
            self._on_round(dict(row))

    def finish(self, summary: dict[str, Any], *, model_blob: bytes) -> None:
        """Close the CSVs; write summary.json, the final global model and the plots."""
        self._metrics.close()
        self._rejected.close()
        write_atomic(self.out / "model.safetensors", model_blob)
        text = json.dumps(_finite(summary), indent=2, sort_keys=True) + "\n"
        write_atomic(self.out / "summary.json", text.encode())  # last: the run is complete
        self.plot()

    def plot(self) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        rounds = [r["round"] for r in self.rows]
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(rounds, [r["accuracy"] for r in self.rows], marker="o", label="test accuracy")
        ax.set_xlabel("round")
        ax.set_ylabel("accuracy")
        ax.grid(alpha=0.3)
        ax2 = ax.twinx()
        ax2.plot(
            rounds, [r["loss"] for r in self.rows], color="tab:red", alpha=0.6, label="test loss"
        )
        ax2.set_ylabel("loss")
        ax.set_title(self.out.name)
        lines = ax.get_lines() + ax2.get_lines()
        ax.legend(lines, [str(ln.get_label()) for ln in lines], loc="center right", fontsize=8)
        fig.tight_layout()
        fig.savefig(self.out / "accuracy.png", dpi=120)
        plt.close(fig)
        if self.rows and "simulated_time_s" in self.rows[0]:
            fig, ax = plt.subplots(figsize=(6, 4))
            ax.plot(
                [r["simulated_time_s"] for r in self.rows],
                [r["accuracy"] for r in self.rows],
                marker="o",
            )
            ax.set_xlabel("simulated time (s)")
            ax.set_ylabel("test accuracy")
            ax.grid(alpha=0.3)
            ax.set_title(f"{self.out.name}: accuracy against simulated network time")
            fig.tight_layout()
            fig.savefig(self.out / "accuracy_time.png", dpi=120)
            plt.close(fig)


def _round_of(line: str) -> int:
    head = line.split(",", 1)[0].strip()
    return int(head) if head.isdigit() else 1 << 62


def _number(v: str | None) -> Any:
    try:
        return float(v) if v not in (None, "") else float("nan")
    except ValueError:
        return v


def _finite(obj: Any) -> Any:
    """JSON has no NaN: write null instead."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj
