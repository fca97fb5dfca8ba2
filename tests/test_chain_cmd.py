"""``fedledger chain``: a Hardhat v2 node started, reached, stopped by its PID file; clear errors.

The command runs as a subprocess (as a user runs it), so that a detached node outlives the
command that started it; waits poll with deadlines.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fedledger import node

ROOT = Path(__file__).resolve().parents[1]
NODE_MODULES = ROOT / "node_modules"
FEDLEDGER = [sys.executable, "-c", "from fedledger.cli.main import app; app()"]


def _chain(*args: str | Path, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*FEDLEDGER, "chain", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def _exited(pid: int, *, within: float = 30.0) -> bool:
    """Whether ``pid`` exits (or has exited) before the deadline: waits on a pidfd, which
    becomes readable when the process ends (Linux >= 5.3), rather than polling."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        readable, _, _ = select.select([fd], [], [], within)
        return bool(readable)
    finally:
        os.close(fd)


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture
def pid_file(tmp_path: Path) -> Iterator[Path]:
    """A PID file path; whatever node it still names at the end is stopped."""
    path = tmp_path / "state" / "chain.json"
    yield path
    info = node.read_pid_file(path) if path.exists() else None
    if info is not None and node.is_alive(info.pid):
        os.killpg(info.pid, signal.SIGKILL)


@pytest.mark.hardhat
def test_a_detached_node_answers_at_the_printed_url_and_stops_by_its_pid_file(
    pid_file: Path, tmp_path: Path
) -> None:
    """--detach returns once eth_chainId answers, prints the URL on stdout and writes the PID
    file; a fedledger Chain connects to it; `chain stop` ends the node's process and frees the
    port."""
    done = _chain("--detach", "--node-modules", NODE_MODULES, "--pid-file", pid_file, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    url = done.stdout.strip()
    assert url.startswith("http://127.0.0.1:")
    info = json.loads(pid_file.read_text())
    assert info["url"] == url and info["port"] == int(url.rsplit(":", 1)[1])
    assert node.chain_id(url) == 31337  # hardhat.config.js's chain, answered after the CLI exited

    from fedledger.ledger.chain import Chain
    from fedledger.ledger.keys import derive_account

    someone = derive_account(seed=7, role="aggregator").address
    chain = Chain.from_url(url, fund=[someone])  # a transaction from the node's first account
    try:
        assert chain.w3.eth.chain_id == 31337 and chain.w3.eth.get_balance(someone) > 0
    finally:
        chain.close()

    stopped = _chain("stop", "--pid-file", pid_file, cwd=tmp_path)
    assert stopped.returncode == 0, stopped.stderr
    assert f"PID {info['pid']}" in stopped.stderr
    assert _exited(info["pid"])
    assert not pid_file.exists()
    assert _port_free(info["port"])


@pytest.mark.hardhat
def test_ctrl_c_stops_a_foreground_node_and_exits_0(pid_file: Path, tmp_path: Path) -> None:
    """In the foreground the command prints the URL, then SIGINT stops the node's process
    group, removes the PID file and exits 0."""
    proc = subprocess.Popen(
        [*FEDLEDGER, "chain", "--node-modules", str(NODE_MODULES), "--pid-file", str(pid_file)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()  # printed once the node answers
        assert url.startswith("http://127.0.0.1:"), proc.communicate(timeout=30)
        pid = json.loads(pid_file.read_text())["pid"]
        assert node.chain_id(url) == 31337
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert _exited(pid)
    assert not pid_file.exists()
    assert "Traceback" not in err


@pytest.mark.hardhat
def test_a_busy_port_is_one_clear_line(pid_file: Path, tmp_path: Path) -> None:
    """--port on a port something listens on: exit 1, one line naming the port, no node."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        args = ("--port", str(port), "--node-modules", NODE_MODULES, "--pid-file", pid_file)
        done = _chain(*args, cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"error: port {port} on 127.0.0.1 is in use: pass another --port, or leave --port out "
        "to pick a free one"
    ]
    assert done.stdout == "" and not pid_file.exists()


def test_a_node_modules_without_hardhat_says_run_npm_ci(tmp_path: Path) -> None:
    """--node-modules (or $FEDLEDGER_NODE_MODULES) at a folder without Hardhat: one line that
    says to run `npm ci`, exit 1."""
    empty = tmp_path / "node_modules"
    empty.mkdir()
    for args, env in (
        (["--node-modules", str(empty)], {}),
        ([], {node.NODE_MODULES_ENV: str(empty)}),
    ):
        done = subprocess.run(
            [*FEDLEDGER, "chain", "--detach", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            env={**os.environ, **env},
            timeout=60,
        )
        assert done.returncode == 1
        (line,) = done.stderr.strip().splitlines()
        assert line.startswith(f"error: no Hardhat in {empty}: run `npm ci` first")


def test_no_node_on_path_is_one_clear_line(tmp_path: Path) -> None:
    """Hardhat is in node_modules but Node.js is not on PATH: one line saying to install it."""
    nm = tmp_path / "node_modules"
    (nm / ".bin").mkdir(parents=True)
    (nm / ".bin" / "hardhat").write_text("#!/usr/bin/env node\n")
    (nm / "hardhat").mkdir()
    (nm / "hardhat" / "package.json").write_text('{"version": "2.29.1"}')
    done = subprocess.run(
        [*FEDLEDGER, "chain", "--detach", "--node-modules", str(nm)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": str(tmp_path / "no-such-bin")},
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: Node.js is not on PATH: install Node 20 (with npm), then run `npm ci`"
    ]


def test_hardhat_3_in_node_modules_is_refused(tmp_path: Path) -> None:
    """A node_modules whose Hardhat is not v2 (as `npx hardhat` may install) is named."""
    nm = tmp_path / "node_modules"
    (nm / ".bin").mkdir(parents=True)
    (nm / ".bin" / "hardhat").write_text("#!/bin/sh\n")
    (nm / "hardhat").mkdir()
    (nm / "hardhat" / "package.json").write_text('{"version": "3.0.0"}')
    with pytest.raises(node.NodeError, match=r"has Hardhat 3\.0\.0, fedledger chain needs"):
        node.find_hardhat(nm)


def test_a_stale_pid_file_is_named_and_removed_by_stop(pid_file: Path, tmp_path: Path) -> None:
    """`chain stop` with a PID file whose process is gone: exit 1, one line saying it was
    stale, the file removed; no process is signalled. Without a file: one line too."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    pid_file.parent.mkdir(parents=True)
    pid_file.write_text(
        json.dumps({"pid": gone.pid, "url": "http://127.0.0.1:9", "port": 9, "log": "x.log"})
    )
    done = _chain("stop", "--pid-file", pid_file, cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"error: {pid_file} was stale: process {gone.pid} is not a running Hardhat node (it "
        "stopped already); removed the file"
    ]
    assert not pid_file.exists()

    again = _chain("stop", "--pid-file", pid_file, cwd=tmp_path)
    assert again.returncode == 1
    (line,) = again.stderr.strip().splitlines()
    assert line.startswith(f"error: no PID file {pid_file}")


def test_a_live_process_that_is_not_hardhat_is_never_signalled(
    pid_file: Path, tmp_path: Path
) -> None:
    """A PID file naming a live process that is not a Hardhat node (a reused PID) is stale:
    `chain stop` leaves that process alone."""
    other = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    try:
        pid_file.parent.mkdir(parents=True)
        pid_file.write_text(
            json.dumps({"pid": other.pid, "url": "http://127.0.0.1:9", "port": 9, "log": "x"})
        )
        done = _chain("stop", "--pid-file", pid_file, cwd=tmp_path)
        assert done.returncode == 1 and "was stale" in done.stderr
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


def test_the_chain_command_imports_neither_torch_nor_web3() -> None:
    """Starting a node needs only the standard library: the CLI module and fedledger.node
    load without torch or web3."""
    code = (
        "import sys, fedledger.cli.chain, fedledger.node; "
        "print(sorted(m for m in ('torch', 'web3') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
