"""Name -> class registries.

Every module a model YAML may name is registered here; the parser resolves names ONLY through a
registry, never through ``eval``/``getattr`` on user strings.

Example:
    >>> from mirrordet.registry import MODULES
    >>> @MODULES.register(aliases=("nn.MyBlock",))
    ... class MyBlock(nn.Module): ...
"""

from __future__ import annotations

import difflib
from typing import Callable, Iterator, TypeVar

from mirrordet.utils.errors import RegistryError

T = TypeVar("T")


class Registry:
    """A named mapping from strings to classes (or callables).

    Duplicate names raise; an unknown name raises a ``RegistryError`` listing the closest names.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, object] = {}

    def register(self, name: str | None = None, aliases: tuple[str, ...] = ()) -> Callable[[T], T]:
        """Decorator registering ``obj`` under ``name`` (default: its ``__name__``) and ``aliases``."""

        def deco(obj: T) -> T:
            for key in (name or obj.__name__, *aliases):  # type: ignore[attr-defined]
                self.add(key, obj)
            return obj

        return deco

    def add(self, name: str, obj: object) -> None:
        """Register ``obj`` under ``name``; raises ``RegistryError`` if the name is taken."""
        if not isinstance(name, str) or not name:
            raise RegistryError(f"{self.kind} registry: names must be non-empty strings, got {name!r}")
        if name in self._entries:
            raise RegistryError(
                f"{self.kind} registry: {name!r} is already registered to {self._entries[name]!r}"
            )
        self._entries[name] = obj

    def get(self, name: str) -> object:
        """Look up ``name``; unknown names raise ``RegistryError`` with close matches."""
        if isinstance(name, str) and name in self._entries:
            return self._entries[name]
        close = difflib.get_close_matches(str(name), list(self._entries), n=5, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; registered: {', '.join(sorted(self))}"
        raise RegistryError(f"unknown {self.kind} {name!r}{hint}")

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> list[str]:
        """Sorted registered names (aliases included)."""
        return sorted(self._entries)


MODULES = Registry("module")
"""Modules that may appear in a model YAML's ``module`` column."""
