"""Plugins: user code that registers models, datasets, partitions, rules, attacks and client
training loops by name, imported before a configuration is validated.

Three ways in (docs/extending.md):

* ``plugins = ["my_plugins", "lib/more.py"]`` at the top of a config file: each entry is a
  module next to the config file (``my_plugins.py`` or a package ``my_plugins/``), a ``.py``
  path relative to the config file's folder, or else a module on the Python path. An entry
  found next to the file is recorded as its absolute path in the run's ``config.toml``, so
  that ``fedledger audit`` loads the same code.
* ``fedledger.plugins`` entry points of installed packages, loaded the first time a
  configuration is validated.
* Importing the module yourself before calling :func:`fedledger.run`.

Importing is idempotent: a module already imported (under any name, from the same file) is not
executed again, so its registrations are not repeated.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Iterable
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType

from fedledger.errors import ConfigError

ENTRY_POINT_GROUP = "fedledger.plugins"
_entry_points_loaded = False


def resolve_plugin(entry: str, folder: Path) -> str:
    """``entry`` as it is recorded: the absolute path of the file it names next to ``folder``
    (``name.py``, ``name/__init__.py`` or a ``.py`` path), or the module name unchanged."""
    if not isinstance(entry, str) or not entry.strip():
        raise ConfigError(f"plugins: each entry is a module name or a .py path, got {entry!r}")
    if entry.endswith(".py"):
        p = Path(entry).expanduser()
        return str(p if p.is_absolute() else (folder / p).resolve())
    rel = Path(*entry.split("."))
    for candidate in (folder / rel.with_suffix(".py"), folder / rel / "__init__.py"):
        if candidate.is_file():
            return str(candidate.resolve())
    return entry


def load_plugins(entries: Iterable[str]) -> list[ModuleType]:
    """Import every plugin of ``entries`` (resolved as :func:`resolve_plugin` records them) and
    the installed entry points; a ConfigError naming the entry when one cannot be imported."""
    load_entry_points()
    return [_import(e) for e in entries]


def load_entry_points() -> None:
    """Import every installed package's ``fedledger.plugins`` entry point (once)."""
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            ep.load()
        except Exception as exc:  # a broken installed plugin names itself
            raise ConfigError(
                f"the installed plugin {ep.name!r} ({ep.value}, entry point group "
                f"{ENTRY_POINT_GROUP!r}) failed to import: {type(exc).__name__}: {exc}"
            ) from None


def _import(entry: str) -> ModuleType:
    if entry.endswith(".py") or entry.endswith("__init__.py"):
        return _import_file(Path(entry))
    try:
        return importlib.import_module(entry)
    except ModuleNotFoundError as exc:
        if exc.name is not None and entry.startswith(exc.name):
            raise ConfigError(
                f"plugins: no module {entry!r} next to the config file or on the Python path; "
                "give a module name, or the path of a .py file relative to the config file"
            ) from None
        raise _failed(entry, exc) from None
    except Exception as exc:
        raise _failed(entry, exc) from None


def _import_file(path: Path) -> ModuleType:
    path = path.resolve()
    if not path.is_file():
        raise ConfigError(f"plugins: the file {path} does not exist")
    for module in list(sys.modules.values()):  # imported already, perhaps under another name
        file = getattr(module, "__file__", None)
        if file is not None and _same(file, path):
            return module
    package = path.name == "__init__.py"
    stem = path.parent.name if package else path.stem
    name = f"fedledger_plugin_{stem}_{hashlib.sha256(str(path).encode()).hexdigest()[:8]}"
    spec = importlib.util.spec_from_file_location(
        name, path, submodule_search_locations=[str(path.parent)] if package else None
    )
    if spec is None or spec.loader is None:
        raise ConfigError(f"plugins: cannot import {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise _failed(str(path), exc) from None
    return module


def _same(file: str, path: Path) -> bool:
    try:
        return Path(file).resolve() == path
    except OSError:
        return False


def _failed(entry: str, exc: BaseException) -> ConfigError:
    return ConfigError(f"plugins: importing {entry!r} failed: {type(exc).__name__}: {exc}")
