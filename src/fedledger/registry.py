"""Explicit name registries (Opacus style): ``register`` refuses duplicates, ``create`` names the choices.

A registry may know its built-in entries before they are imported (``builtins``: each name and
the module whose import registers it): ``name in registry`` and ``names()`` then need no import
at all (a configuration is checked without loading torch), and ``get`` imports the module the
first time its entry is asked for.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Generic, TypeVar

from fedledger.errors import RegistryError

T = TypeVar("T")


class Registry(Generic[T]):
    """A named table of factories or functions of one kind (``"aggregation rule"``, ``"model"``...)."""

    def __init__(self, kind: str, *, builtins: Mapping[str, str] | None = None) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._builtins = dict(builtins or {})  # name -> the module that registers it

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: register ``obj`` under ``name``; a second registration of a name is an
        error, and so is taking a built-in's name (loaded or not)."""

        def deco(obj: T) -> T:
            module = self._builtins.get(name)
            taken = name in self._items or (module is not None and module not in sys.modules)
            if taken:
                raise RegistryError(f"{self.kind} {name!r} is already registered")
            self._items[name] = obj
            return obj

        return deco

    def get(self, name: str) -> T:
        if name not in self._items and name in self._builtins:
            importlib.import_module(self._builtins[name])  # registers it
        try:
            return self._items[name]
        except KeyError:
            raise RegistryError(
                f"unknown {self.kind} {name!r}; expected one of: {', '.join(self.names())}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._items.keys() | self._builtins.keys())

    def __contains__(self, name: object) -> bool:
        return name in self._items or name in self._builtins
