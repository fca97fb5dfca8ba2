"""Write constraints.txt: the exact versions of fedledger[dev]'s dependency closure in this venv.

    .venv/bin/python scripts/constraints.py > constraints.txt

It is ``pip freeze --all --exclude-editable`` kept to the packages fedledger and its ``dev``
extra need, directly or not (whatever else the venv holds is left out), with local version
labels dropped: ``torch==2.13.0`` is met by the CPU build ``2.13.0+cpu`` and by PyPI's build.
"""

from __future__ import annotations

import re
import subprocess
import sys
from importlib import metadata

from packaging.requirements import Requirement

ROOT_DIST = "fedledger"
EXTRAS = frozenset({"dev"})

HEADER = """\
# Exact versions that `make setup` and CI install (`pip install -c constraints.txt ...`): the
# newest set the tests ran with. pyproject.toml has the ranges a library user gets.
# Regenerate from a venv that passes `make test`:
#   .venv/bin/python scripts/constraints.py > constraints.txt
# (pip freeze --all --exclude-editable, kept to fedledger[dev]'s dependency closure; local
# labels dropped, so torch==2.13.0 is met by the CPU build 2.13.0+cpu).
"""


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(root: str = ROOT_DIST, extras: frozenset[str] = EXTRAS) -> set[str]:
    """Normalised names of every installed distribution ``root[extras]`` needs, root excluded."""
    dists = {_norm(d.metadata["Name"]): d for d in metadata.distributions()}
    done: dict[str, set[str]] = {}
    todo = [(root, extras)]
    while todo:
        name, wanted = todo.pop()
        key = _norm(name)
        dist = dists.get(key)
        if dist is None:  # a marker-excluded or optional package that is not installed
            continue
        have = done.setdefault(key, set())
        new = set(wanted) | {""}
        if have and new <= have:
            continue
        have |= new
        for line in dist.requires or []:
            req = Requirement(line)
            if any(req.marker is None or req.marker.evaluate({"extra": e}) for e in new):
                todo.append((req.name, frozenset(req.extras)))
    done.pop(_norm(root), None)
    return set(done)


def main() -> None:
    keep = closure()
    frozen = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--all", "--exclude-editable"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    lines = []
    for line in frozen.splitlines():
        name, sep, version = line.partition("==")
        if sep and _norm(name) in keep:
            lines.append(f"{name}=={version.split('+', 1)[0]}")
    missing = keep - {_norm(ln.partition("==")[0]) for ln in lines}
    if missing:
        sys.exit(f"not pinned by pip freeze (installed some other way?): {sorted(missing)}")
    sys.stdout.write(HEADER + "\n".join(sorted(lines, key=str.lower)) + "\n")


if __name__ == "__main__":
    main()
