"""The committed ABI/bytecode must match contracts/*.sol (run `make compile` after editing)."""

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from fedledger.ledger.contract import load_artifact

ROOT = Path(__file__).resolve().parents[1]


def test_artifact_fingerprint_matches_sources() -> None:
    art = load_artifact()
    h = hashlib.sha256()
    for f in sorted(p.name for p in (ROOT / "contracts").glob("*.sol")):
        h.update(f"{f}\n".encode())
        h.update((ROOT / "contracts" / f).read_bytes())
    h.update(json.dumps(art["settings"], separators=(",", ":")).encode())
    h.update(art["compiler"].encode())
    assert h.hexdigest() == art["sourceHash"], (
        "src/fedledger/ledger/artifacts is stale against contracts/: run `make compile` and commit"
    )


def test_recompiling_gives_the_committed_bytecode(tmp_path: Path) -> None:
    if shutil.which("node") is None or not (ROOT / "node_modules" / "solc").exists():
        pytest.fail("solc-js is not installed: run `npm ci` (make test does)")
    subprocess.run(
        ["node", str(ROOT / "scripts/compile.js"), str(tmp_path)], check=True, capture_output=True
    )
    fresh = json.loads((tmp_path / "FedLedger.json").read_text())
    art = load_artifact()
    assert fresh["bytecode"] == art["bytecode"]
    assert fresh["abi"] == art["abi"]
