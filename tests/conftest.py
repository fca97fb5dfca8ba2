"""Shared fixtures: small configs, and a Hardhat v2 node started on 127.0.0.1 and stopped by PID."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def hardhat_url() -> Iterator[str]:
    """A Hardhat v2 JSON-RPC node on a free loopback port for the whole session."""
    hardhat = ROOT / "node_modules" / ".bin" / "hardhat"
    if not hardhat.exists() or shutil.which("node") is None:
        pytest.fail("Hardhat is not installed: run `npm ci` (make test does) to get node_modules")
    port = _free_port()
    env = {**os.environ, "HARDHAT_DISABLE_TELEMETRY_PROMPT": "true", "CI": "true"}
    proc = subprocess.Popen(
        [str(hardhat), "node", "--hostname", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        seen = []
        for line in proc.stdout:  # blocks until the node says it is listening (or exits)
            seen.append(line)
            if "Started HTTP" in line:
                break
        else:
            pytest.fail("hardhat node exited before listening:\n" + "".join(seen))
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
