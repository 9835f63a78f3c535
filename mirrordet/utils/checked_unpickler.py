"""The base of mirrordet's restricted unpicklers (CIFAR batches, other tools' checkpoints).

The pure-Python unpickler, whose every opcode can be overridden, with the dict opcodes checking each key's type
before the key is hashed: hashing a crafted key (a memo-shared nested tuple) takes exponential time, so only keys
of ``key_types`` (plain scalars, hashed in O(len)) are ever hashed. Subclasses add ``find_class`` and their own
REDUCE / BUILD rules on a copy of :attr:`CheckedKeyUnpickler.dispatch`.
"""

from __future__ import annotations

import pickle
from typing import Any, Callable, NoReturn


def refuse_opcode(name: str, where: str) -> Callable[[Any], NoReturn]:
    """A dispatch entry that refuses opcode ``name`` ("... is not allowed in ``where``")."""

    def load(self: Any) -> NoReturn:
        raise pickle.UnpicklingError(f"pickle opcode {name} is not allowed in {where}")
    return load


def latin1_encode(obj: Any, encoding: Any = "utf-8", errors: Any = "strict") -> bytes:
    """``_codecs.encode`` as protocol 2 uses it for bytes: ``encode(str, 'latin1')``, nothing else."""
    if type(obj) is not str or encoding not in ("latin1", "latin-1") or errors != "strict":
        raise pickle.UnpicklingError("_codecs.encode is only allowed as encode(str, 'latin1')")
    return obj.encode("latin1")


def empty_bytes(*args: Any) -> bytes:
    """``bytes()`` as protocol 2 writes an empty bytes object."""
    if args:
        raise pickle.UnpicklingError("bytes(...) is only allowed without arguments")
    return b""


class CheckedKeyUnpickler(pickle._Unpickler):  # the pure-Python unpickler: every opcode is overridable
    """DICT, SETITEM and SETITEMS that type-check keys (``key_types``) before hashing them."""

    key_types: tuple[type, ...] = (str, int)
    dispatch = dict(pickle._Unpickler.dispatch)

    def check_key(self, key: Any) -> Any:
        """``key`` if its type is one of ``key_types``; ``UnpicklingError`` (unhashed) otherwise."""
        if type(key) not in self.key_types:
            raise pickle.UnpicklingError(f"dict key of type {type(key).__name__} is not allowed")
        return key

    def load_dict(self) -> None:
        """DICT (protocol 0/1): keys checked before they are hashed."""
        items = self.pop_mark()
        self.append({self.check_key(items[i]): items[i + 1] for i in range(0, len(items), 2)})

    def load_setitem(self) -> None:
        """SETITEM: key checked before it is hashed."""
        value, key = self.stack.pop(), self.stack.pop()
        target = self.stack[-1]
        if type(target) is not dict:
            raise pickle.UnpicklingError("SETITEM on a non-dict")
        target[self.check_key(key)] = value

    def load_setitems(self) -> None:
        """SETITEMS: keys checked before they are hashed."""
        items = self.pop_mark()
        target = self.stack[-1]
        if type(target) is not dict:
            raise pickle.UnpicklingError("SETITEMS on a non-dict")
        for i in range(0, len(items), 2):
            target[self.check_key(items[i])] = items[i + 1]

    dispatch[pickle.DICT[0]] = load_dict
    dispatch[pickle.SETITEM[0]] = load_setitem
    dispatch[pickle.SETITEMS[0]] = load_setitems
