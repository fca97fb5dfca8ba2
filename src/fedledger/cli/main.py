"""``fedledger`` command line: run, audit (and netsim, sweep as they land)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from fedledger.cli.chain import chain_app
from fedledger.errors import FedLedgerError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Blockchain-based federated learning on a real Ethereum ledger.",
)
console = Console(stderr=True)  # progress, warnings, errors
results = Console()  # what a command found or made, on stdout: pipe it, grep it


def _version(value: bool) -> None:
    if value:
        from fedledger import __version__

        typer.echo(f"fedledger {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="print the version and exit"
        ),
    ] = False,
) -> None:
    """Blockchain-based federated learning on a real Ethereum ledger."""


def _say(text: str) -> None:
    """A line on stderr as it is written (a path like runs/[x] is not rich markup)."""
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def _result(text: str) -> None:
    """A result line on stdout, as it is written."""
    results.print(text, markup=False, highlight=False, soft_wrap=True)


def _fail(exc: Exception, code: int = 2) -> typer.Exit:
    console.print(
        f"[bold red]error:[/bold red] {escape(str(exc))}", highlight=False, soft_wrap=True
    )
    return typer.Exit(code)


@app.command()
def run(
    config: Annotated[Path, typer.Argument(help="experiment TOML file")],
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="override a config value: section.key=value (repeatable)"),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="run directory (default runs/<name>)")] = None,
    quiet: Annotated[bool, typer.Option(help="no progress bar")] = False,
    overwrite: Annotated[
        bool, typer.Option(help="replace an earlier run in the run directory")
    ] = False,
    resume: Annotated[
        bool,
        typer.Option(help="go on with the interrupted run in the run directory (same config)"),
    ] = False,
    json_: Annotated[
        bool, typer.Option("--json", help="print summary.json on stdout instead of the lines")
    ] = False,
) -> None:
    """Run a federated-learning experiment and write RUN_DIR (which must be new or empty)."""
    from fedledger.api import run as run_api
    from fedledger.config import load_config
    from fedledger.errors import ConfigError

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    run_dir = out
    try:
        cfg = load_config(config, set_ or [])
        run_dir = out or Path("runs") / cfg.name
        if resume and overwrite:
            raise ConfigError(
                "--resume goes on with the run in --out, --overwrite replaces it: choose one"
            )
        summary = run_api(
            cfg, out=run_dir, progress=not quiet, overwrite=overwrite, resume=resume
        ).summary
    except FedLedgerError as exc:
        raise _fail(exc) from None
    except KeyboardInterrupt:
        where = run_dir if run_dir is not None else "the run directory"
        _say(
            f"interrupted: {where} holds the rounds recorded so far and no summary; "
            f"`fedledger audit {where}` checks them and reports the run as unfinished, and "
            "`fedledger run` with the same arguments and --resume goes on with it"
        )
        raise typer.Exit(130) from None
    if json_:  # the file itself: what a script would read from the run directory
        typer.echo((run_dir / "summary.json").read_text(encoding="utf-8"), nl=False)
        return
    led = summary["ledger"]
    _result(
        f"final accuracy {summary['final_accuracy']:.4f} after {summary['rounds']} rounds in "
        f"{summary['wall_s']:.1f} s; global model {summary['global_model_hash'][:16]}...; "
        f"ledger: {led['tx_count']} tx, {led['gas_used']:,} gas"
    )
    market = summary.get("market")
    if market is not None:
        joined = market.get("participation")
        who = f"{joined['joined']} of a crowd of {joined['crowd']} joined; " if joined else ""
        _result(
            f"task market: {who}paid {market['total_paid']:.4g} tokens, of which "
            f"{market['reimbursed']:.4g} reimbursed; slashed {market['slashed']:.4g} "
            "(payouts.csv, incentives.png)"
        )
    _result(f"results in {run_dir}/ (metrics.csv, summary.json, accuracy.png, model.safetensors)")


@app.command()
def audit(
    run_dir: Annotated[Path, typer.Argument(help="a run directory written by `fedledger run`")],
    url: Annotated[
        str | None, typer.Option(help="read the ledger from this live JSON-RPC node")
    ] = None,
    json_: Annotated[
        bool, typer.Option("--json", help="print the report as JSON on stdout")
    ] = False,
    quiet: Annotated[bool, typer.Option(help="no progress bar")] = False,
) -> None:
    """Replay the ledger and check every signature, blob, aggregation and output. Exit 0 if
    consistent, 1 if not."""
    import atexit
    import gc
    import sys

    from fedledger.audit.progress import audit_bar

    failed: FedLedgerError | None = None
    with audit_bar(console, enabled=not quiet) as bar:
        # the auditor's imports (torch, web3) make some 350k objects that live as long as
        # the process: collections walking them cost 0.4 s while they load and 0.4 s more in
        # the interpreter's teardown; frozen, no collection walks them (nothing else changes)
        fresh = "fedledger.audit.auditor" not in sys.modules
        if fresh:
            gc.disable()
        try:
            from fedledger.audit.auditor import audit_run
        finally:
            if fresh:
                gc.freeze()
                gc.enable()
        atexit.unregister(gc.freeze)
        atexit.register(gc.freeze)
        try:
            report = audit_run(run_dir, url=url, progress=bar.update)
        except FedLedgerError as exc:
            failed = exc
    if failed is not None:
        raise _fail(failed, code=1) from None
    if json_:
        typer.echo(report.to_json())
    else:
        _result(report.describe())
    if not report.ok:
        raise typer.Exit(1)


keys_app = typer.Typer(no_args_is_help=True, help="Make and inspect the parties' keys.")
app.add_typer(keys_app, name="keys")
app.add_typer(chain_app, name="chain")


@keys_app.command("new")
def keys_new(
    count: Annotated[int, typer.Option(min=1, help="number of client keys")],
    out: Annotated[Path, typer.Option(help="folder for the keystore files (must not hold them)")],
    password_file: Annotated[
        Path | None,
        typer.Option(
            help="file holding the password (else $FEDLEDGER_KEYSTORE_PASSWORD or a prompt)"
        ),
    ] = None,
    light: Annotated[
        bool,
        typer.Option(
            help="cheap scrypt (n = 4096, like geth --lightkdf): for throw-away test keys"
        ),
    ] = False,
) -> None:
    """Create fresh keys for an admin, an aggregator and COUNT clients, one encrypted Ethereum
    keystore file each (admin.json, aggregator.json, client-00000.json, ...). Use them with
    ledger.keys = "keystore:OUT"."""
    from fedledger.ledger.keys import (
        LIGHT_SCRYPT_N,
        PASSWORD_ENV,
        STANDARD_SCRYPT_N,
        KeysError,
        new_keystore,
        read_password,
    )

    try:
        try:
            password = read_password(str(password_file) if password_file else None)
        except KeysError:
            if password_file is not None:
                raise
            password = typer.prompt(
                f"keystore password (or set {PASSWORD_ENV})",
                hide_input=True,
                confirmation_prompt=True,
            )
        files = new_keystore(
            out,
            count=count,
            password=password,
            scrypt_n=LIGHT_SCRYPT_N if light else STANDARD_SCRYPT_N,
        )
    except FedLedgerError as exc:
        raise _fail(exc) from None
    _result(f"wrote {len(files)} keystore files to {out}/ (admin, aggregator, {count} clients)")


@app.command()
def predict(
    run_dir: Annotated[Path, typer.Argument(help="a run directory written by `fedledger run`")],
    file: Annotated[Path, typer.Argument(help="raw data: a CSV with the run's columns, or .npz")],
    out: Annotated[
        Path | None, typer.Option(help="write the predictions here (CSV; default stdout)")
    ] = None,
) -> None:
    """Predict FILE's rows with the run's model, prepared as the run prepared its data
    (preprocessing.json); prints the accuracy when FILE has labels."""
    from fedledger.engine.predict import predict as run_predict
    from fedledger.engine.predict import write_predictions

    try:
        p = run_predict(run_dir, file)
    except FedLedgerError as exc:
        raise _fail(exc) from None
    if out is not None:
        write_predictions(out, p)
    else:
        for i, lab in enumerate(p.labels):
            typer.echo(f"{i},{lab}")
    if p.accuracy is not None:
        line = f"accuracy {p.accuracy:.4f} on {len(p.labels)} labelled rows"
        (_result if out is not None else _say)(line)  # stdout holds the rows without --out


@app.command()
def sweep(
    config: Annotated[Path, typer.Argument(help="base experiment TOML file")],
    grid: Annotated[
        list[str],
        typer.Option("--grid", help="section.key=v1,v2,... (repeatable; the product is swept)"),
    ],
    out: Annotated[Path, typer.Option(help="sweep directory (results.csv, heat maps, cells/)")],
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="override for every cell: section.key=value")
    ] = None,
    jobs: Annotated[int, typer.Option(min=1, help="cells run in parallel processes")] = 1,
) -> None:
    """Run every cell of a grid (resumable: finished cells are skipped) and tabulate them.
    Exit 0 if every cell ran, 1 if any failed (its error is in results.csv)."""
    from fedledger.engine.sweep import parse_grid, run_sweep

    logging.basicConfig(level=logging.ERROR)
    try:
        rows = run_sweep(config, grid=parse_grid(grid), out=out, overrides=set_ or [], jobs=jobs)
    except FedLedgerError as exc:
        raise _fail(exc) from None
    failed = [r for r in rows if not str(r.get("status", "")).startswith("ok")]
    _result(
        f"{len(rows)} cells, {len(failed)} failed; results in {out}/results.csv and heatmap_*.png"
    )
    if failed:  # the table is written; the exit code says it is incomplete
        raise typer.Exit(1)


def _register_netsim() -> None:
    from fedledger.cli.netsim import register

    register(app)


_register_netsim()


def main() -> None:  # pragma: no cover
    app()
