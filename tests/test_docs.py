"""Every guarantee README and docs/threat-model.md state names a test that tries to break it:
each test they name exists (and so runs in CI)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REF = re.compile(r"`(?:(?P<file>[\w/]+\.py)::)?(?P<name>test_\w+)`")


def _tests() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for path in (ROOT / "tests").rglob("test_*.py"):
        for name in re.findall(r"^def (test_\w+)", path.read_text(), flags=re.M):
            out.setdefault(name, set()).add(path.name)
    return out


def test_every_named_test_exists() -> None:
    tests = _tests()
    for doc in ("README.md", "docs/threat-model.md"):
        text = (ROOT / doc).read_text()
        refs = list(REF.finditer(text))
        assert len(refs) > 10, doc
        for m in refs:
            name, file = m["name"], m["file"]
            assert name in tests, f"{doc} names {name}, which is no test"
            if file:
                assert Path(file).name in tests[name], f"{doc}: {name} is not in {file}"


def test_the_guarantee_table_names_a_test_on_every_row() -> None:
    text = (ROOT / "README.md").read_text()
    section = text.split("## What the ledger guarantees", 1)[1].split("\n## ", 1)[0]
    table = section.split("| guarantee", 1)[1].split("\n\n", 1)[0]
    rows = [r for r in table.splitlines() if r.startswith("| ")]
    assert len(rows) >= 8
    for row in rows:
        assert REF.search(row.split("|")[-2]), row
