"""``fedledger chain [--port N] [--detach]`` and ``fedledger chain stop``: a local Hardhat v2 node.

The node logic is :mod:`fedledger.node` (standard library only: no torch, no web3); the main
CLI adds :data:`chain_app` as the ``chain`` group.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from fedledger import node
from fedledger.errors import FedLedgerError

console = Console(stderr=True)
chain_app = typer.Typer(no_args_is_help=False)

PidFileOption = Annotated[
    Path,
    typer.Option(help="where the node's PID and URL are kept (its log goes beside it, .log)"),
]


def _fail(exc: Exception) -> typer.Exit:
    console.print(
        f"[bold red]error:[/bold red] {escape(str(exc))}", highlight=False, soft_wrap=True
    )
    return typer.Exit(1)


def _say(text: str) -> None:
    console.print(text, highlight=False, soft_wrap=True, markup=False)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@chain_app.callback(invoke_without_command=True)
def chain(
    ctx: typer.Context,
    port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, help="port on 127.0.0.1 (default: a free one)"),
    ] = None,
    detach: Annotated[
        bool,
        typer.Option(
            "--detach", help="return once the node answers; stop it with `fedledger chain stop`"
        ),
    ] = False,
    pid_file: PidFileOption = node.DEFAULT_PID_FILE,
    node_modules: Annotated[
        Path | None,
        typer.Option(
            help="the node_modules holding Hardhat v2 (default $FEDLEDGER_NODE_MODULES, else "
            "./node_modules)"
        ),
    ] = None,
    timeout: Annotated[
        float, typer.Option(min=1.0, help="seconds to wait for the node's first answer")
    ] = 60.0,
) -> None:
    """A local Hardhat v2 JSON-RPC node on 127.0.0.1 for ledger.url and audit --url: prints its
    URL on stdout once it answers eth_chainId, then runs until Ctrl-C (or, with --detach, in
    the background until `fedledger chain stop`)."""
    if ctx.invoked_subcommand is not None:
        return
    # SIGTERM stops a foreground node as Ctrl-C does (and one still starting, in either mode)
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        stale = node.read_pid_file(pid_file)
        if stale is not None and node.running_node(pid_file) is None:
            _say(f"replacing the stale PID file {pid_file} (process {stale.pid} is gone)")
        proc, info = node.start(
            node_modules=node_modules or node.default_node_modules(),
            pid_file=pid_file,
            port=port,
            timeout=timeout,
        )
    except FedLedgerError as exc:
        raise _fail(exc) from None
    except KeyboardInterrupt:  # start() has stopped the node it began
        raise typer.Exit(130) from None
    if detach:
        signal.signal(signal.SIGTERM, previous)
        typer.echo(info.url)
        _say(
            f"Hardhat node (PID {info.pid}) at {info.url}; log {info.log}; "
            f"stop it with `fedledger chain stop --pid-file {pid_file}`"
        )
        return
    try:
        typer.echo(info.url)
        sys.stdout.flush()
        _say(f"Hardhat node (PID {info.pid}) at {info.url}; log {info.log}; Ctrl-C stops it")
        code = proc.wait()
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C does not cut the stop short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            node.stop_process(info.pid)
        except FedLedgerError as exc:
            raise _fail(exc) from None
        finally:
            pid_file.unlink(missing_ok=True)
        _say(f"stopped the node at {info.url} (PID {info.pid})")
        return
    pid_file.unlink(missing_ok=True)
    raise _fail(
        node.NodeError(f"the node exited by itself with code {code}; see its log {info.log}")
    )


@chain_app.command("stop")
def stop(pid_file: PidFileOption = node.DEFAULT_PID_FILE) -> None:
    """Stop the node `fedledger chain --detach` started (its process group); remove its PID
    file."""
    try:
        info = node.stop(pid_file)
    except FedLedgerError as exc:
        raise _fail(exc) from None
    _say(f"stopped the node at {info.url} (PID {info.pid})")
