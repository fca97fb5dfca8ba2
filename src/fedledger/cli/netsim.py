"""``fedledger netsim CONFIG.toml [--sweep network.KEY=lo:hi:n] --out DIR``.

Reads the ``[network]`` section (and the top-level ``seed``) of the TOML file, runs one
simulation per sweep point, and writes ``DIR/netsim.csv`` plus PNG plots.  The main CLI calls
:func:`register` to add the command.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from fedledger.errors import ConfigError, FedLedgerError

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]


def read_network_section(config: Path) -> tuple[dict[str, Any], int]:
    """The ``[network]`` table and the top-level ``seed`` (0 when absent) of a TOML file."""
    if not config.is_file():
        raise ConfigError(f"config file {config} not found; pass the path of a TOML file")
    try:
        data = tomllib.loads(config.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{config}: not valid TOML ({exc})") from None
    section = data.get("network", {})
    if not isinstance(section, dict):
        raise ConfigError(f"{config}: [network] must be a table")
    seed = data.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ConfigError(f"{config}: seed must be an integer, got {seed!r}")
    return section, seed


def _fmt(v: Any) -> Any:
    if isinstance(v, float):
        return "nan" if math.isnan(v) else repr(v)
    return v


def write_csv(rows: list[dict[str, Any]], path: Path) -> Path:
    from fedledger.netsim.sweep import csv_columns

    cols = csv_columns(rows)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: _fmt(r.get(k, "")) for k in cols})
    return path


def netsim_command(
    config: Path, sweep: list[str], out: Path, *, console: Console | None = None
) -> None:
    """Run the sweep and write ``out/netsim.csv`` and ``out/netsim_*.png``."""
    from fedledger.netsim import plots
    from fedledger.netsim.sweep import parse_sweep, run_sweep, sweep_points

    console = console or Console(stderr=True)
    section, seed = read_network_section(config)
    sweeps = [parse_sweep(s) for s in sweep]
    sweep_points(section, seed, sweeps)  # every point valid before the progress bar starts
    total = math.prod(len(v) for _, v in sweeps) if sweeps else 1
    out.mkdir(parents=True, exist_ok=True)
    with Progress(
        TextColumn("netsim"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task("", total=total)

        def step(i: int, n: int, swept: Mapping[str, Any]) -> None:
            desc = " ".join(
                f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in swept.items()
            )
            bar.update(task, completed=i, description=desc)

        rows = run_sweep(section, seed, sweeps, progress=step)
    write_csv(rows, out / "netsim.csv")
    label = sweeps[0][0] if sweeps else None
    plots.plot_latency_vs_rate(rows, out / "netsim_latency.png")
    plots.plot_tps(rows, out / "netsim_tps.png")
    plots.plot_breakdown(rows, out / "netsim_breakdown.png", label_key=label)
    Console().print(  # the result, on stdout
        f"wrote {out / 'netsim.csv'} ({len(rows)} rows) and netsim_*.png", markup=False
    )


def register(app: typer.Typer) -> None:
    """Add the ``netsim`` command to the main typer app."""

    @app.command("netsim")
    def netsim(
        config: Annotated[
            Path, typer.Argument(help="TOML config; its \\[network] and seed are used.")
        ],
        sweep: Annotated[
            list[str] | None,
            typer.Option(
                "--sweep",
                help="network.KEY=lo:hi:n (linear), lo:hi:n:log, or a,b,c; repeat for a grid.",
            ),
        ] = None,
        out: Annotated[Path, typer.Option("--out", help="Output directory.")] = Path("runs/netsim"),
    ) -> None:
        """Simulate the network: block interval, forks, TPS, round latency vs analysis."""
        try:
            netsim_command(config, sweep or [], out)
        except FedLedgerError as exc:
            Console(stderr=True).print(
                f"[bold red]error:[/bold red] {escape(str(exc))}", highlight=False, soft_wrap=True
            )
            raise typer.Exit(2) from None
