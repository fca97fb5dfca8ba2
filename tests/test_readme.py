"""README's commands copy-paste and work, in order, in a fresh copy of the repository, and
none writes over another's results. The set-up commands (``make``, ``pip``) are the ones CI
itself runs before the tests (or need a download): they are listed, not run."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SETUP = ("make ", "pip ")  # what `make test` itself does before the tests run
OUTPUTS = {"runs", "keys", ".fedledger", ".pytest_cache", ".mypy_cache", ".ruff_cache"}


def commands() -> list[str]:
    """Every command of README's ``bash`` blocks, continuation lines joined, comments cut."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    out = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            cmd = re.sub(r"\s+#.*$", "", line).strip()
            if cmd and not cmd.startswith("#"):
                out.append(cmd)
    return out


def test_every_command_is_run_or_is_set_up() -> None:
    cmds = commands()
    assert len(cmds) > 15
    for cmd in cmds:
        runnable = cmd.startswith((".venv/bin/", "export ", "URL="))  # .venv/bin/python too
        assert runnable or cmd.startswith(SETUP), f"README command neither run nor set-up: {cmd}"


def test_no_two_commands_write_the_same_directory() -> None:
    outs = []
    for cmd in commands():
        words = shlex.split(cmd.replace("$(", "").replace(")", ""))
        assert "--overwrite" not in words, cmd
        if "--out" in words and words[words.index("--out") - 1] != "keys":
            outs.append(words[words.index("--out") + 1].rstrip("/"))
    assert len(outs) == len(set(outs)), outs


@pytest.mark.slow
@pytest.mark.hardhat
def test_the_commands_work_in_order_in_a_fresh_copy(tmp_path: Path) -> None:
    """The whole README, in one shell, in a copy of the working tree without any run output
    (its folders linked, not copied); every command must exit 0."""
    if not (ROOT / "node_modules" / ".bin" / "hardhat").exists():
        pytest.skip("node_modules lacks Hardhat: run `npm ci` (make test does)")
    copy = tmp_path / "fresh"
    copy.mkdir()
    for entry in ROOT.iterdir():
        if entry.name not in OUTPUTS and entry.name != ".git":
            (copy / entry.name).symlink_to(entry)
    script = ["set -euo pipefail"]
    for cmd in commands():
        if not cmd.startswith(SETUP):
            script += [f"echo '+ {cmd}' >&2", cmd]
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDLEDGER_")}
    done = subprocess.run(
        ["bash", "-c", "\n".join(script)], cwd=copy, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-4000:]
    for cmd in commands():
        if "--out runs/" in cmd and " run " in cmd:
            out = cmd.split("--out ", 1)[1].split()[0]
            assert (copy / out / "summary.json").exists(), out
