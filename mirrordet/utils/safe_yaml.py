"""Bounded YAML loading for every user-supplied YAML text (files and CLI values).

``yaml.safe_load`` never runs code, but anchors and aliases let a few hundred bytes stand for
billions of nodes (``a: &a [x, x, x]``, ``b: &b [*a, *a, *a]``, ...): the loader itself shares
the objects, yet the first ``str()``, ``repr()``, comparison or recursive check walks the full
expansion and the process hangs. :func:`load_yaml_text` therefore composes the node graph first
(PyYAML's ``SafeLoader``), measures the *expanded* size and nesting depth with memoization over
node identity (linear in the text, not in the expansion), and only then constructs Python
values. :func:`check_bounded` applies the same bounds to values that were built elsewhere.

Bounds (documented here, and named in every refusal):
    MAX_NODES = 100_000  expanded nodes (scalars, lists, mappings, keys), aliases counted in full.
    MAX_DEPTH = 64       nesting levels.
Recursive aliases (``a: &a [*a]``) are refused too. ``MAX_CLASSES`` (100,000) bounds the class
count a dataset or model YAML (or ``nc=``) may declare, as ``nc: 1000000000`` alone would build a
billion-entry name table or head.
"""

from __future__ import annotations

import reprlib
from pathlib import Path
from typing import Any, Callable

import yaml

from mirrordet.utils.errors import ConfigError, MirrordetError

MAX_NODES = 100_000
MAX_DEPTH = 64
MAX_CLASSES = 100_000
ErrorType = type[MirrordetError]
_SHORT = reprlib.Repr()
_SHORT.maxlist, _SHORT.maxdict, _SHORT.maxstring, _SHORT.maxother, _SHORT.maxlevel = 8, 8, 80, 80, 3


def short_repr(value: Any) -> str:
    """``repr(value)`` cut to a readable length for messages (8 items a list, 80 characters a string)."""
    return _SHORT.repr(value)


class _Bounds:
    """Memoized (expanded size, depth) of a node graph or a Python value graph; raises past the bounds."""

    def __init__(self, source: str, error: ErrorType, max_nodes: int, max_depth: int) -> None:
        self.source, self.error, self.max_nodes, self.max_depth = source, error, max_nodes, max_depth
        self.memo: dict[int, tuple[int, int]] = {}
        self.active: set[int] = set()
        self.keep: list[Any] = []  # keeps measured objects alive so their ids stay unique

    def refuse(self, what: str) -> MirrordetError:
        return self.error(f"{self.source}: {what}; refusing to load it")

    def measure(self, obj: Any, children: Callable[[Any], list | None], level: int = 1) -> tuple[int, int]:
        """(expanded node count, depth) of ``obj``, whose child list ``children(obj)`` returns (or None)."""
        key = id(obj)
        if key in self.memo:
            return self.memo[key]
        if level > self.max_depth:
            raise self.refuse(f"nested more than {self.max_depth} levels deep")
        kids = children(obj)
        if kids is None:
            return 1, 1
        if key in self.active:
            raise self.refuse("contains a recursive alias (a value that contains itself)")
        self.active.add(key)
        size, depth = 1, 1
        for kid in kids:
            s, d = self.measure(kid, children, level + 1)
            size, depth = size + s, max(depth, d + 1)
            if size > self.max_nodes:
                raise self.refuse(f"expands to more than {self.max_nodes:,} nodes (anchors/aliases repeated "
                                  "too often?)")
        if depth > self.max_depth:
            raise self.refuse(f"nested more than {self.max_depth} levels deep")
        self.active.discard(key)
        self.memo[key] = (size, depth)
        self.keep.append(obj)
        return size, depth


class _TooDeep(Exception):
    """Internal: the composer or scanner went past ``max_depth``."""


class _DepthLimitedLoader(yaml.SafeLoader):
    """``SafeLoader`` that stops at a nesting depth: in its (recursive) composer, before Python's
    recursion limit, and in its scanner, whose cost per token grows with the ``[``/``{`` nesting
    (a few thousand ``[`` would otherwise take seconds)."""

    def __init__(self, stream: str, max_depth: int) -> None:
        self.max_depth, self.level = max_depth, 0
        super().__init__(stream)

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        self.level += 1
        try:
            if self.level > self.max_depth:
                raise _TooDeep
            return super().compose_node(parent, index)
        finally:
            self.level -= 1

    def fetch_flow_collection_start(self, TokenClass: type) -> None:
        if self.flow_level >= self.max_depth:
            raise _TooDeep
        super().fetch_flow_collection_start(TokenClass)


def _node_children(node: yaml.Node) -> list[yaml.Node] | None:
    if isinstance(node, yaml.SequenceNode):
        return node.value
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return None


def _value_children(value: Any) -> list[Any] | None:
    if isinstance(value, dict):
        return [v for pair in value.items() for v in pair]
    if isinstance(value, (list, tuple, set, frozenset)):
        return list(value)
    return None


def _yaml_error_line(e: yaml.YAMLError) -> str:
    """A one-line description of a PyYAML error (its str() spans several lines)."""
    if isinstance(e, yaml.MarkedYAMLError):
        mark = e.problem_mark or e.context_mark
        what = " ".join(x for x in (e.context, e.problem) if x) or type(e).__name__
        return f"{what} (line {mark.line + 1}, column {mark.column + 1})" if mark else what
    return " ".join(str(e).split())


def check_bounded(value: Any, source: str, error: ErrorType = ConfigError, max_nodes: int = MAX_NODES,
                  max_depth: int = MAX_DEPTH) -> Any:
    """Return ``value`` if its expansion (shared sub-objects counted each time) is within the bounds.

    Args:
        value: an already-built Python value (dicts, lists, tuples, sets, scalars).
        source: what the value is, for the message (a file name, ``'save='``, ...).
        error: the project error type to raise.

    Raises:
        error: more than ``max_nodes`` expanded nodes, deeper than ``max_depth``, or self-containing.
    """
    _Bounds(source, error, max_nodes, max_depth).measure(value, _value_children)
    return value


def load_yaml_text(text: str, source: str, error: ErrorType = ConfigError, *, invalid_as_text: bool = False,
                   max_nodes: int = MAX_NODES, max_depth: int = MAX_DEPTH) -> Any:
    """``yaml.safe_load(text)`` that refuses texts whose anchors/aliases expand past the bounds.

    Args:
        text: YAML text. source: the file name (or CLI key) the messages name.
        error: the project error type to raise (ConfigError, DatasetError, ModelConfigError, ...).
        invalid_as_text: return ``text`` itself instead of raising when it is not valid YAML (CLI
            values such as ``name=a: b``); a value that is too large is refused either way.

    Raises:
        error: not valid YAML (one line, with the line/column), or too large/deep/recursive.
    """
    loader = None
    try:
        loader = _DepthLimitedLoader(text, max_depth)  # its reader refuses unprintable characters here
        node = loader.get_single_node()
        if node is None:
            return None
        _Bounds(source, error, max_nodes, max_depth).measure(node, _node_children)
        return loader.construct_document(node)
    except MirrordetError:
        raise
    except yaml.YAMLError as e:
        if invalid_as_text:
            return text
        raise error(f"{source}: not valid YAML: {_yaml_error_line(e)}") from None
    except (_TooDeep, RecursionError):
        raise error(f"{source}: YAML nested too deeply (more than {max_depth} levels); refusing to load it") from None
    except (ValueError, TypeError, OverflowError) as e:  # e.g. a date 2001-02-30, an over-long !!int
        if invalid_as_text:
            return text
        raise error(f"{source}: bad YAML value: {' '.join(str(e).split())}") from None
    finally:
        if loader is not None:
            loader.dispose()


def read_yaml_text(path: str | Path, error: ErrorType = ConfigError) -> str:
    """The UTF-8 text of a YAML file; unreadable or non-UTF-8 files raise ``error`` naming the file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise error(f"{path}: cannot read the file: {e.strerror or e}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise error(f"{path}: not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start}); "
                    "save the YAML as UTF-8") from None


def load_yaml_file(path: str | Path, error: ErrorType = ConfigError) -> Any:
    """:func:`read_yaml_text` then :func:`load_yaml_text` (messages name ``path``)."""
    return load_yaml_text(read_yaml_text(path, error), str(path), error)
