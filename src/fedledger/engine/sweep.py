"""``fedledger sweep``: every cell of a grid of config overrides, resumable, into one table.

Each cell is an ordinary run in ``OUT/cells/<slug>/``; a finished cell whose resolved
``config.toml`` equals the cell's current configuration is skipped, so an interrupted sweep
picks up where it stopped, and a cell whose settings changed runs again; cells whose
configurations are identical (``attack.name=none`` at every fraction) share one run.
``OUT/results.csv`` has one row per cell (the grid values, then the summary figures, or the
error that stopped the cell), and ``OUT/heatmap_<metric>.png`` shows accuracy, attack success
and detection F1 over the first two grid keys (one panel per value of the remaining keys), each
on the range of its own values, "n/a" where a metric does not apply.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import shutil
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from fedledger.config import (
    ExperimentConfig,
    apply_overrides,
    config_from_dict,
    parse_override,
    read_config_file,
)
from fedledger.errors import ConfigError, FedLedgerError

METRICS = ["final_accuracy", "attack_success_rate", "detection_f1"]
RESULT_COLUMNS = [*METRICS, "wall_s", "rounds", "global_model_hash", "status"]


@dataclass(frozen=True)
class Grid:
    keys: list[str]
    values: list[list[Any]]

    def cells(self) -> Iterator[dict[str, Any]]:
        for combo in itertools.product(*self.values):
            yield dict(zip(self.keys, combo, strict=True))

    def __len__(self) -> int:
        return math.prod(len(v) for v in self.values)


def _recorded(cfg: ExperimentConfig) -> str | None:
    """The config.toml a run of ``cfg`` writes: ``cfg`` itself, or with a task's participation
    decided (None when nobody joins: the cell fails when it runs)."""
    from fedledger.incentives.participation import needs_resolution, resolve

    if not needs_resolution(cfg):
        return cfg.to_toml()
    try:
        return resolve(cfg)[0].to_toml()
    except ConfigError:
        return None


def parse_grid(items: list[str]) -> Grid:
    """``["attack.name=a,b", "attack.fraction=0.1,0.3"]`` -> Grid (values as TOML literals)."""
    keys: list[str] = []
    values: list[list[Any]] = []
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--grid expects section.key=v1,v2,..., got {item!r}")
        key, raw = item.split("=", 1)
        vals = [parse_override(f"{key}={v}")[1] for v in raw.split(",") if v.strip()]
        if not vals:
            raise ConfigError(f"--grid {key} has no values")
        if key in keys:
            raise ConfigError(f"--grid {key} given twice")
        keys.append(key.strip())
        values.append(vals)
    if not keys:
        raise ConfigError("a sweep needs at least one --grid section.key=v1,v2")
    return Grid(keys, values)


def cell_slug(cell: dict[str, Any]) -> str:
    return "__".join(f"{k}={v}" for k, v in cell.items()).replace("/", "_").replace(" ", "")


def cell_config_dict(
    base: dict[str, Any], cell: dict[str, Any], overrides: list[str]
) -> dict[str, Any]:
    """The base config with the cell's values.

    ``attack.name=none`` removes the attack. A ``[sweep]`` table in the base config is not part
    of the experiment: ``[sweep.attack_params.<attack>]`` and ``[sweep.rule_params.<rule>]``
    give the parameters a cell uses when it picks that attack or rule (so one grid can cover
    attacks and rules whose parameters differ).
    """
    raw = json.loads(json.dumps(base))  # deep copy of plain TOML data
    presets = raw.pop("sweep", {})
    raw = apply_overrides(raw, overrides)
    items = [
        f"{k}={json.dumps(v)}" for k, v in cell.items() if not (k == "attack.name" and v == "none")
    ]
    raw = apply_overrides(raw, items)
    if cell.get("attack.name") == "none" or raw.get("attack", {}).get("name") == "none":
        raw.pop("attack", None)
    attack = raw.get("attack")
    if isinstance(attack, dict) and attack.get("name") in presets.get("attack_params", {}):
        attack["params"] = {**presets["attack_params"][attack["name"]], **attack.get("params", {})}
    agg = raw.setdefault("aggregation", {})
    rule_params = presets.get("rule_params", {}).get(agg.get("name", "fedavg"), {})
    for k, v in rule_params.items():
        agg.setdefault(k, v)
    return raw


def _summary_row(s: dict[str, Any], status: str) -> dict[str, Any]:
    """A results.csv row's figures from a run's summary."""
    return {
        **{m: s.get(m) for m in METRICS},
        "wall_s": s.get("wall_s"),
        "rounds": s.get("rounds"),
        "global_model_hash": s.get("global_model_hash"),
        "status": status,
    }


def _run_cell(cfg: ExperimentConfig, out: Path) -> dict[str, Any]:
    from fedledger.engine.experiment import run_experiment

    try:
        return _summary_row(run_experiment(cfg, out=out, progress=False), "ok")
    except FedLedgerError as exc:
        return {"status": f"error: {exc}".replace("\n", " ")}


def run_sweep(
    config: Path,
    *,
    grid: Grid,
    out: Path,
    overrides: list[str] | None = None,
    jobs: int = 1,
    progress: bool = True,
) -> list[dict[str, Any]]:
    base = read_config_file(config)
    out.mkdir(parents=True, exist_ok=True)
    cells = list(grid.cells())
    rows: dict[str, dict[str, Any]] = {}
    todo: list[tuple[str, dict[str, Any], ExperimentConfig]] = []
    first: dict[str, str] = {}  # a configuration -> the first cell that has it
    same: dict[str, str] = {}  # a cell -> the earlier cell with the same configuration
    for cell in cells:
        slug = cell_slug(cell)
        raw = cell_config_dict(base, cell, overrides or [])
        # every cell is validated up front: a typo fails before any cell runs
        cfg = config_from_dict(raw, source=f"sweep cell {slug}")
        key = cfg.to_toml()
        if key in first:  # e.g. attack.name=none at every fraction: one run serves them all
            same[slug] = first[key]
            continue
        first[key] = slug
        cell_dir = out / "cells" / slug
        done = cell_dir / "summary.json"
        saved = cell_dir / "config.toml"
        if done.exists() and saved.exists() and saved.read_text(encoding="utf-8") == _recorded(cfg):
            rows[slug] = {**cell, **_summary_row(json.loads(done.read_text()), "ok (cached)")}
        else:  # never run, unfinished, or run with other settings: start the cell afresh
            if cell_dir.exists():
                shutil.rmtree(cell_dir)
            todo.append((slug, cell, cfg))

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("[bold]sweep"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[last]}"),
        TimeElapsedColumn(),
        disable=not progress,
    ) as bar:
        task = bar.add_task("cells", total=len(cells), completed=len(cells) - len(todo), last="")
        if jobs <= 1:
            for slug, cell, cfg in todo:
                rows[slug] = {**cell, **_run_cell(cfg, out / "cells" / slug)}
                bar.update(task, advance=1, last=_short(rows[slug]))
                _write_results(out, grid, cells, rows)
        else:
            with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("fork")) as pool:
                futs = {
                    pool.submit(_run_cell, cfg, out / "cells" / slug): (slug, cell)
                    for slug, cell, cfg in todo
                }
                for fut in as_completed(futs):
                    slug, cell = futs[fut]
                    rows[slug] = {**cell, **fut.result()}
                    bar.update(task, advance=1, last=_short(rows[slug]))
                    _write_results(out, grid, cells, rows)
    for cell in cells:
        slug = cell_slug(cell)
        if slug in same:
            shared = {k: v for k, v in rows[same[slug]].items() if k not in grid.keys}
            status = f"{shared.get('status', '')} (the run of {same[slug]})"
            rows[slug] = {**cell, **shared, "status": status}
    ordered = _write_results(out, grid, cells, rows)
    plot_heatmaps(out, grid, ordered)
    return ordered


def _short(row: dict[str, Any]) -> str:
    acc = row.get("final_accuracy")
    return f"acc {acc:.3f}" if isinstance(acc, float) else str(row.get("status", ""))[:60]


def _write_results(
    out: Path, grid: Grid, cells: list[dict[str, Any]], rows: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    ordered = [rows[cell_slug(c)] for c in cells if cell_slug(c) in rows]
    with (out / "results.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=[*grid.keys, *RESULT_COLUMNS], extrasaction="ignore")
        w.writeheader()
        for r in ordered:
            w.writerow(r)
    return ordered


def color_range(values: list[float]) -> tuple[float, float]:
    """The colour scale of one metric's map: the range of its values (within [0, 1], the
    metrics' own range), widened around a single value so that it stays visible."""
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return 0.0, 1.0
    lo, hi = min(finite), max(finite)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.05, hi + 0.05
    return max(0.0, lo), min(1.0, hi)


def _metric_value(row: dict[str, Any], metric: str) -> float:
    v = row.get(metric)
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else float("nan")


def plot_heatmaps(out: Path, grid: Grid, rows: list[dict[str, Any]]) -> list[Path]:
    """One PNG per metric: first grid key on rows, second on columns, a panel per other combo."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    ykey = grid.keys[0]
    xkey = grid.keys[1] if len(grid.keys) > 1 else None
    rest = grid.keys[2:]
    yvals = grid.values[0]
    xvals = grid.values[1] if xkey else [""]
    panels = list(itertools.product(*grid.values[2:])) or [()]
    paths = []
    for metric in METRICS:
        vmin, vmax = color_range([_metric_value(r, metric) for r in rows])
        fig, axes = plt.subplots(
            1,
            len(panels),
            figsize=(1.2 + 0.9 * len(xvals) * len(panels), 0.6 + 0.45 * len(yvals)),
            squeeze=False,
        )
        for ax, panel in zip(axes[0], panels, strict=True):
            m = np.full((len(yvals), len(xvals)), np.nan)
            for r in rows:
                if tuple(r.get(k) for k in rest) != tuple(panel):
                    continue
                i = yvals.index(r[ykey])
                j = xvals.index(r[xkey]) if xkey else 0
                m[i, j] = _metric_value(r, metric)
            cmap = plt.get_cmap("viridis" if metric != "attack_success_rate" else "magma")
            cmap = cmap.with_extremes(bad="0.85")  # n/a cells in light grey
            im = ax.imshow(m, vmin=vmin, vmax=vmax, cmap=cmap, aspect="auto")
            middle = (vmin + vmax) / 2
            for (i, j), v in np.ndenumerate(m):
                ax.text(
                    j,
                    i,
                    "n/a" if np.isnan(v) else f"{v:.3f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="black" if np.isnan(v) or v >= middle else "white",
                )
            ax.set_yticks(range(len(yvals)), [str(v) for v in yvals], fontsize=7)
            ax.set_xticks(
                range(len(xvals)), [str(v) for v in xvals], fontsize=7, rotation=45, ha="right"
            )
            ax.set_ylabel(ykey)
            ax.set_xlabel(xkey or "")
            ax.set_title(
                ", ".join(f"{k}={v}" for k, v in zip(rest, panel, strict=True)) or metric,
                fontsize=8,
            )
        fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8, label=metric)
        if all(math.isnan(_metric_value(r, metric)) for r in rows):
            fig.suptitle(f"{metric} does not apply to any cell (e.g. no attack)", fontsize=8)
        p = out / f"heatmap_{metric}.png"
        fig.savefig(p, dpi=110, bbox_inches="tight")
        plt.close(fig)
        paths.append(p)
    return paths
