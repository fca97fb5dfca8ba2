"""A local Hardhat v2 JSON-RPC node for fedledger runs: start, wait until it answers, stop.

``fedledger chain`` (``fedledger.cli.chain``) is the command line over this module. The node is
the Hardhat v2 that ``npm ci`` puts in ``node_modules`` (never ``npx``, which may offer to
install Hardhat 3), started as ``node_modules/.bin/hardhat node`` in a session of its own on
127.0.0.1, so that stopping it signals its whole process group. Which node runs where is kept
in a small JSON "PID file" (``pid``, ``url``, ``port``, ``log``) for ``fedledger chain stop``.

Standard library only: starting a node imports neither torch nor web3.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from fedledger.errors import FedLedgerError

HOST = "127.0.0.1"
NODE_MODULES_ENV = "FEDLEDGER_NODE_MODULES"
DEFAULT_PID_FILE = Path(".fedledger") / "chain.json"
HARDHAT_MAJOR = 2
_POLL_S = 0.1  # between two readiness or exit checks, always under a deadline


class NodeError(FedLedgerError, RuntimeError):
    """The local node cannot be started, reached or stopped; the message says what to do."""


@dataclasses.dataclass(frozen=True)
class NodeInfo:
    """What a PID file records about a running node."""

    pid: int
    url: str
    port: int
    log: str

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2) + "\n"


def default_node_modules() -> Path:
    """``$FEDLEDGER_NODE_MODULES`` if set, else ``./node_modules``."""
    env = os.environ.get(NODE_MODULES_ENV)
    return Path(env) if env else Path("node_modules")


def find_hardhat(node_modules: Path) -> Path:
    """The Hardhat v2 launcher in ``node_modules``, after checking that Node.js is on PATH.

    Raises
    ------
    NodeError
        Hardhat is missing or not v2, or Node.js is missing.
    """
    hardhat = node_modules / ".bin" / "hardhat"
    if not hardhat.exists():
        raise NodeError(
            f"no Hardhat in {node_modules}: run `npm ci` first (in the fedledger checkout), "
            f"or point --node-modules (or ${NODE_MODULES_ENV}) at a node_modules that has it"
        )
    try:
        meta = json.loads((node_modules / "hardhat" / "package.json").read_text(encoding="utf-8"))
        version = str(meta["version"])
    except (OSError, ValueError, KeyError):
        version = "unknown"
    if not version.startswith(f"{HARDHAT_MAJOR}."):
        raise NodeError(
            f"{node_modules} has Hardhat {version}, fedledger chain needs Hardhat v2 "
            "(package.json pins it): run `npm ci`"
        )
    if shutil.which("node") is None:
        raise NodeError("Node.js is not on PATH: install Node 20 (with npm), then run `npm ci`")
    return hardhat


def port_is_free(port: int, host: str = HOST) -> bool:
    """Whether a server could listen on ``host:port`` now (as Node does: with SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = HOST) -> int:
    """A port the kernel reports free on ``host`` (free when asked; the node binds it later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def chain_id(url: str, *, timeout: float = 2.0) -> int:
    """The node's ``eth_chainId``, asked over JSON-RPC (raises OSError or ValueError if none)."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []})
    req = urllib.request.Request(
        url, data=body.encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - loopback only
        reply: dict[str, Any] = json.loads(resp.read())
    return int(reply["result"], 16)


def is_alive(pid: int) -> bool:
    """Whether process ``pid`` exists and has not exited (a zombie counts as exited)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # no /proc (macOS), or it just went
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _looks_like_hardhat(pid: int) -> bool:
    """Whether ``pid`` runs ``hardhat node`` (where /proc says; elsewhere assumed)."""
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return not Path("/proc").is_dir()
    return any(part.endswith(b"hardhat") for part in cmd) and b"node" in cmd


def read_pid_file(pid_file: Path) -> NodeInfo | None:
    """The node a PID file names, or None if there is no such file."""
    try:
        data = json.loads(pid_file.read_text(encoding="utf-8"))
        return NodeInfo(
            pid=int(data["pid"]), url=str(data["url"]), port=int(data["port"]), log=str(data["log"])
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise NodeError(
            f"{pid_file} is not a fedledger chain PID file ({exc}): remove it if no node runs"
        ) from None


def running_node(pid_file: Path) -> NodeInfo | None:
    """The live node a PID file names; None if there is no file or if it is stale."""
    info = read_pid_file(pid_file)
    if info is None or not (is_alive(info.pid) and _looks_like_hardhat(info.pid)):
        return None
    return info


def _log_tail(log: Path, lines: int = 5) -> str:
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    kept = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return " | ".join(kept[-lines:])


def _busy(port: int) -> NodeError:
    return NodeError(
        f"port {port} on {HOST} is in use: pass another --port, or leave --port out to pick a "
        "free one"
    )


def start(
    *,
    node_modules: Path,
    pid_file: Path,
    port: int | None = None,
    timeout: float = 60.0,
) -> tuple[subprocess.Popen[bytes], NodeInfo]:
    """Start a Hardhat v2 node on 127.0.0.1 and return once it answers ``eth_chainId``.

    Parameters
    ----------
    node_modules
        The folder holding Hardhat (``npm ci``); the node runs in its parent folder, whose
        ``hardhat.config.js`` sets the chain (fedledger's: chain id 31337, Cancun).
    pid_file
        Where the node's PID, URL and port are written once it answers; its log goes beside it
        (same name, ``.log``).
    port
        The port to listen on; None picks a free one.
    timeout
        Seconds to wait for the first answer.

    Raises
    ------
    NodeError
        Hardhat or Node.js is missing, the port is busy, a node from ``pid_file`` still runs,
        or the node exited or stayed silent before answering (the message quotes its log).
    """
    hardhat = find_hardhat(node_modules)
    live = running_node(pid_file)
    if live is not None:
        raise NodeError(
            f"a node from {pid_file} is running at {live.url} (PID {live.pid}): stop it with "
            "`fedledger chain stop`, or pass another --pid-file"
        )
    if port is not None and not port_is_free(port):
        raise _busy(port)
    _make_state_dir(pid_file.parent)
    log = pid_file.with_suffix(".log").resolve()
    chosen = port if port is not None else free_port()
    env = {**os.environ, "HARDHAT_DISABLE_TELEMETRY_PROMPT": "true", "CI": "true"}
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            [str(hardhat), "node", "--hostname", HOST, "--port", str(chosen)],
            cwd=node_modules.resolve().parent,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # its own process group: stop() signals the group
        )
    url = f"http://{HOST}:{chosen}"
    try:
        _wait_until_answering(proc, url=url, log=log, port=chosen, timeout=timeout)
    except BaseException:
        stop_process(proc.pid)
        with contextlib.suppress(ChildProcessError, OSError):
            proc.wait(timeout=1)
        raise
    info = NodeInfo(pid=proc.pid, url=url, port=chosen, log=str(log))
    tmp = pid_file.with_suffix(".tmp")
    tmp.write_text(info.to_json(), encoding="utf-8")
    tmp.replace(pid_file)
    return proc, info


def _make_state_dir(folder: Path) -> None:
    """Create the PID file's folder; a new one ignores itself in git (as .pytest_cache does)."""
    if folder.is_dir():
        return
    folder.mkdir(parents=True)
    (folder / ".gitignore").write_text("# Created by fedledger chain.\n*\n", encoding="utf-8")


def _wait_until_answering(
    proc: subprocess.Popen[bytes], *, url: str, log: Path, port: int, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        code = proc.poll()
        if code is not None:
            tail = _log_tail(log)
            if "EADDRINUSE" in tail:
                raise _busy(port)
            raise NodeError(f"hardhat node exited with code {code} before answering: {tail}")
        try:
            chain_id(url, timeout=1.0)
            return
        except (OSError, ValueError, KeyError):
            pass
        if time.monotonic() > deadline:
            raise NodeError(
                f"hardhat node did not answer at {url} within {timeout:g} s (log: {log})"
            )
        time.sleep(_POLL_S)


def stop_process(pid: int, *, timeout: float = 15.0) -> None:
    """SIGTERM the process group ``pid`` leads, SIGKILL it after ``timeout`` s; return once
    ``pid`` has exited."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, timeout)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)  # reap it if it is our child
            if not is_alive(pid):
                return
            time.sleep(_POLL_S)
    raise NodeError(f"process {pid} did not exit after SIGKILL")


def stop(pid_file: Path) -> NodeInfo:
    """Stop the node a PID file names (its whole process group) and remove the file.

    Raises
    ------
    NodeError
        There is no PID file, or it is stale (its process is gone or is not a Hardhat node;
        the file is removed then).
    """
    info = read_pid_file(pid_file)
    if info is None:
        raise NodeError(
            f"no PID file {pid_file}: no node was started with it (pass the --pid-file that "
            "`fedledger chain --detach` used)"
        )
    if not is_alive(info.pid) or not _looks_like_hardhat(info.pid):
        pid_file.unlink(missing_ok=True)
        raise NodeError(
            f"{pid_file} was stale: process {info.pid} is not a running Hardhat node (it "
            "stopped already); removed the file"
        )
    stop_process(info.pid)
    pid_file.unlink(missing_ok=True)
    return info
