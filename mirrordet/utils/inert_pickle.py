"""Read a ``torch.save`` archive of whole Python objects as inert data, running nothing from it.

Other tools (Ultralytics among them) save checkpoints that pickle their model objects, and load
them with ``weights_only=False``, which imports and runs whatever the file names. This reader
unpickles such a file with the pure-Python unpickler, subclassed opcode by opcode:

- a global from a module of :data:`RECORD_MODULES` (the other tool's classes, ``torch.nn``
  modules, numpy scalars, paths, namespaces) becomes a :class:`RecordType`: instantiating or
  calling it (NEWOBJ, REDUCE, INST, OBJ) makes a :class:`Record` that keeps the class path, the
  arguments and the pickled state (BUILD) as data. No class or function of the file is imported;
- tensors are rebuilt by this module's own checked functions from the archive's storage members
  (``torch._utils._rebuild_tensor_v2`` / ``_rebuild_parameter`` are never called), ``set``,
  ``frozenset``, ``OrderedDict``, ``torch.Size`` and protocol-2 ``bytes`` by checked wrappers;
- any other global (``os.system``, ``builtins.eval``, ``subprocess.Popen``, ``torch.load``, ...)
  is refused with :class:`~mirrordet.utils.errors.CheckpointError` before anything is called;
- dict keys and set items must be str, int, float, bool, None or bytes: nothing crafted is ever
  hashed (hashing a memo-shared nested tuple is exponential); copyreg extensions, text
  persistent ids and out-of-band buffers are refused.

The archive's central directory is bounds-checked first (:func:`mirrordet.utils.safe_load.check_zip_bounds`).
"""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path
from typing import Any, Callable, Iterator, NoReturn

import torch

from mirrordet.utils.checked_unpickler import CheckedKeyUnpickler, empty_bytes, latin1_encode, refuse_opcode
from mirrordet.utils.errors import CheckpointError
from mirrordet.utils.safe_load import check_zip_bounds

# Modules whose globals become inert records. A name outside them is refused.
RECORD_MODULES: tuple[str, ...] = (
    "ultralytics", "torch.nn.modules", "torchvision.transforms", "numpy", "pathlib", "types", "argparse",
    "datetime",
)
_STORAGE_DTYPES: dict[str, torch.dtype] = {
    "FloatStorage": torch.float32, "HalfStorage": torch.float16, "BFloat16Storage": torch.bfloat16,
    "DoubleStorage": torch.float64, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8, "BoolStorage": torch.bool,
}
_KEY_TYPES = (str, int, float, bool, type(None), bytes)


class RecordType:
    """A class or function named by the file, never imported: calling it makes a :class:`Record`."""

    __slots__ = ("path",)

    def __init__(self, path: str) -> None:
        self.path = path

    def __call__(self, *args: Any) -> "Record":
        return Record(self.path, args)

    def __repr__(self) -> str:
        return f"RecordType({self.path})"


class Record:
    """An object of the file kept as data.

    Attributes:
        cls: its class (or factory) path, e.g. ``"ultralytics.nn.tasks.DetectionModel"``.
        args: the constructor / reduce arguments. state: what BUILD gave it (usually its ``__dict__``), or None.
    """

    __slots__ = ("cls", "args", "state")

    def __init__(self, cls: str, args: tuple = (), state: Any = None) -> None:
        self.cls, self.args, self.state = cls, args, state

    def attr(self, name: str, default: Any = None) -> Any:
        """``state[name]`` when the state is a dict (an object's ``__dict__``), else ``default``."""
        return self.state.get(name, default) if isinstance(self.state, dict) else default

    def __repr__(self) -> str:
        return f"Record({self.cls})"


def _check_key(key: Any) -> Any:
    """A dict key / set item of a plain type (hashing it is cheap); anything else is refused unhashed."""
    if type(key) not in _KEY_TYPES:
        raise pickle.UnpicklingError(f"a dict key or set item of type {type(key).__name__} is not allowed")
    return key


def _safe_set(items: Any = ()) -> set:
    return {_check_key(i) for i in _plain_sequence(items, "set")}


def _safe_frozenset(items: Any = ()) -> frozenset:
    return frozenset(_safe_set(items))


def _safe_ordered_dict(*args: Any) -> dict:
    if args and not (len(args) == 1 and isinstance(args[0], (list, tuple)) and not args[0]):
        raise pickle.UnpicklingError("OrderedDict(...) is only allowed empty (items follow as SETITEMS)")
    return {}


def _safe_size(dims: Any = ()) -> tuple[int, ...]:
    dims = tuple(_plain_sequence(dims, "torch.Size"))
    if not all(type(d) is int and d >= 0 for d in dims):
        raise pickle.UnpicklingError("torch.Size must hold non-negative ints")
    return dims


def _plain_sequence(items: Any, what: str) -> list | tuple:
    if type(items) not in (list, tuple):
        raise pickle.UnpicklingError(f"{what}(...) takes a list or tuple")
    return items


def _ints(x: Any, what: str) -> tuple[int, ...]:
    if type(x) not in (tuple, list) or not all(type(v) is int and v >= 0 for v in x):
        raise pickle.UnpicklingError(f"tensor {what} must be a tuple of non-negative ints")
    return tuple(x)


def _rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any, *_: Any) -> torch.Tensor:
    """``torch._utils._rebuild_tensor_v2`` with every argument checked against the storage."""
    if not isinstance(storage, torch.Tensor) or storage.dim() != 1 or type(offset) is not int or offset < 0:
        raise pickle.UnpicklingError("a tensor must be rebuilt from a storage of the archive at an int offset")
    size, stride = _ints(size, "size"), _ints(stride, "stride")
    if len(size) != len(stride):
        raise pickle.UnpicklingError("tensor size and stride differ in length")
    if 0 not in size:
        last = offset + sum((n - 1) * s for n, s in zip(size, stride))
        if last >= storage.numel():
            raise pickle.UnpicklingError(f"a tensor of size {size} reaches past its storage of {storage.numel()}")
    return storage.as_strided(size, stride, offset)


def _rebuild_parameter(data: Any, *_: Any) -> torch.Tensor:
    """``torch._utils._rebuild_parameter(_with_state)``: the values only (no gradient state, no hooks)."""
    if not isinstance(data, torch.Tensor):
        raise pickle.UnpicklingError("a parameter must wrap a tensor")
    return data


class _StorageType:
    """A ``torch.<X>Storage`` global: only ever an argument of a persistent id."""

    __slots__ = ("dtype",)

    def __init__(self, dtype: torch.dtype) -> None:
        self.dtype = dtype


_CALLABLES: dict[tuple[str, str], Callable[..., Any]] = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("collections", "OrderedDict"): _safe_ordered_dict,
    ("builtins", "set"): _safe_set, ("__builtin__", "set"): _safe_set,
    ("builtins", "frozenset"): _safe_frozenset, ("__builtin__", "frozenset"): _safe_frozenset,
    ("torch", "Size"): _safe_size,
    ("_codecs", "encode"): latin1_encode,
    ("builtins", "bytes"): empty_bytes, ("__builtin__", "bytes"): empty_bytes,
}
_SAFE_FUNCTIONS = tuple(_CALLABLES.values())


# copyreg extensions, text persistent ids and out-of-band buffers: never written by torch.save
_REFUSED_OPCODES = {pickle.EXT1: "EXT1", pickle.EXT2: "EXT2", pickle.EXT4: "EXT4", pickle.PERSID: "PERSID",
                    pickle.NEXT_BUFFER: "NEXT_BUFFER", pickle.READONLY_BUFFER: "READONLY_BUFFER"}


class _InertUnpickler(CheckedKeyUnpickler):
    """See the module docstring. ``storages`` reads one archive member's bytes by key."""

    key_types = _KEY_TYPES
    dispatch = dict(CheckedKeyUnpickler.dispatch)

    def __init__(self, data: bytes, storages: Callable[[str], bytes]) -> None:
        super().__init__(io.BytesIO(data))
        self._read_storage = storages
        self._loaded: dict[str, torch.Tensor] = {}

    def find_class(self, module: str, name: str) -> Any:
        if type(module) is not str or type(name) is not str:
            raise pickle.UnpicklingError("a global must be named by strings")
        if (module, name) in _CALLABLES:
            return _CALLABLES[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        if any(module == m or module.startswith(m + ".") for m in RECORD_MODULES):
            return RecordType(f"{module}.{name}")
        raise pickle.UnpicklingError(f"the file asks for the Python object {module}.{name}, which is never loaded")

    def persistent_load(self, pid: Any) -> torch.Tensor:
        """``('storage', storage type, key, location, numel)`` -> a 1-D tensor over the member's bytes."""
        if type(pid) is not tuple or len(pid) != 5 or pid[0] != "storage" or not isinstance(pid[1], _StorageType):
            raise pickle.UnpicklingError("unknown persistent id (expected a torch storage reference)")
        _, kind, key, _, numel = pid
        if type(key) is not str or type(numel) is not int or numel < 0:
            raise pickle.UnpicklingError("bad storage reference")
        if key not in self._loaded:
            raw = self._read_storage(key)
            itemsize = torch.empty((), dtype=kind.dtype).element_size()
            if len(raw) < numel * itemsize:
                raise pickle.UnpicklingError(f"storage {key} holds {len(raw)} bytes, {numel * itemsize} declared")
            flat = torch.frombuffer(bytearray(raw), dtype=torch.uint8) if raw else torch.empty(0, dtype=torch.uint8)
            self._loaded[key] = flat[: len(raw) - len(raw) % itemsize].view(kind.dtype)
        return self._loaded[key]

    def load_reduce(self) -> None:
        """REDUCE: only record types and this module's checked functions are called."""
        args = self.stack.pop()
        func = self.stack[-1]
        if type(args) is not tuple or not (isinstance(func, RecordType) or any(func is f for f in _SAFE_FUNCTIONS)):
            raise pickle.UnpicklingError(f"calling {type(func).__name__} objects is not allowed")
        self.stack[-1] = func(*args)

    def load_newobj(self) -> None:
        """NEWOBJ: ``cls.__new__(cls, *args)`` of a record type only."""
        args = self.stack.pop()
        cls = self.stack.pop()
        if not isinstance(cls, RecordType) or type(args) is not tuple:
            raise pickle.UnpicklingError(f"creating {type(cls).__name__} objects is not allowed")
        self.append(cls(*args))

    def load_newobj_ex(self) -> None:
        """NEWOBJ_EX: as NEWOBJ (keyword arguments kept with the record's args)."""
        kwargs = self.stack.pop()
        args = self.stack.pop()
        cls = self.stack.pop()
        if not isinstance(cls, RecordType) or type(args) is not tuple or type(kwargs) is not dict:
            raise pickle.UnpicklingError(f"creating {type(cls).__name__} objects is not allowed")
        self.append(Record(cls.path, (*args, kwargs)))

    def load_build(self) -> None:
        """BUILD: a record keeps its state; a dict (OrderedDict metadata) and a tensor ignore theirs."""
        state = self.stack.pop()
        inst = self.stack[-1]
        if isinstance(inst, Record):
            inst.state = state
        elif not isinstance(inst, (dict, torch.Tensor)):
            raise pickle.UnpicklingError(f"setting the state of {type(inst).__name__} objects is not allowed")

    def load_additems(self) -> None:
        items = self.pop_mark()
        target = self.stack[-1]
        if type(target) is not set:
            raise pickle.UnpicklingError("ADDITEMS on a non-set")
        target.update(self.check_key(i) for i in items)

    def load_frozenset(self) -> None:
        self.append(frozenset(self.check_key(i) for i in self.pop_mark()))

    dispatch[pickle.REDUCE[0]] = load_reduce
    dispatch[pickle.NEWOBJ[0]] = load_newobj
    dispatch[pickle.NEWOBJ_EX[0]] = load_newobj_ex
    dispatch[pickle.BUILD[0]] = load_build
    dispatch[pickle.ADDITEMS[0]] = load_additems
    dispatch[pickle.FROZENSET[0]] = load_frozenset
    dispatch.update({code[0]: refuse_opcode(name, "a checkpoint") for code, name in _REFUSED_OPCODES.items()})


def load_inert(path: str | Path) -> Any:
    """Unpickle the ``torch.save`` zip archive ``path`` as inert data (see the module docstring).

    Returns:
        The file's object tree: dicts, lists, tuples, sets, str/numbers, cpu tensors (views of the
        archive's storages, in their saved dtype) and :class:`Record` for every other object.

    Raises:
        CheckpointError: missing, non-zip, out-of-bounds, truncated or corrupt file, a big-endian
            archive, or anything the reader refuses (the message names the file and the reason).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist (or is not a file)")
    check_zip_bounds(path)
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            pkl = next(n for n in names if n.endswith("data.pkl"))
            prefix = pkl[: -len("data.pkl")]
            if f"{prefix}byteorder" in names and zf.read(f"{prefix}byteorder").strip() != b"little":
                raise CheckpointError(f"refusing to load checkpoint {path}: it was saved big-endian")

            def storage(key: str) -> bytes:
                member = f"{prefix}data/{key}"
                if member not in names:
                    raise pickle.UnpicklingError(f"storage member {member} is missing")
                return zf.read(member)

            return _InertUnpickler(zf.read(pkl), storage).load()
    except CheckpointError:
        raise
    except Exception as e:  # noqa: BLE001 - truncated, garbage, refused globals/opcodes, Recursion/MemoryError
        reason = " ".join(str(e).split())[:200] or "no details"
        raise CheckpointError(f"refusing to load checkpoint {path}: {reason} ({type(e).__name__})") from None


def iter_modules(record: Record, prefix: str = "") -> Iterator[tuple[str, Record]]:
    """(dotted prefix, record) of a pickled ``nn.Module`` record and every submodule record below it, depth
    first in ``named_modules`` order (prefixes end with ``.``); shared or cyclic submodules are visited once."""
    seen: set[int] = set()
    stack: list[tuple[str, Any]] = [(prefix, record)]
    while stack:
        name, rec = stack.pop()
        if not isinstance(rec, Record) or id(rec) in seen:
            continue
        seen.add(id(rec))
        yield name, rec
        children = rec.attr("_modules") or {}
        if isinstance(children, dict):
            stack.extend(reversed([(f"{name}{k}.", child) for k, child in children.items()]))


def walk_module(record: Record, prefix: str = "") -> Iterator[tuple[str, torch.Tensor]]:
    """(dotted name, tensor) of every parameter and persistent buffer of a pickled ``nn.Module`` record,
    in ``state_dict`` order; names as ``state_dict`` writes them. Shared or cyclic submodules are visited once."""
    for name, rec in iter_modules(record, prefix):
        params, buffers = rec.attr("_parameters") or {}, rec.attr("_buffers") or {}
        skip = rec.attr("_non_persistent_buffers_set") or set()
        for table, is_buffer in ((params, False), (buffers, True)):
            if not isinstance(table, dict):
                continue
            for k, v in table.items():
                if isinstance(v, torch.Tensor) and not (is_buffer and k in skip):
                    yield f"{name}{k}", v


__all__ = ["Record", "RecordType", "RECORD_MODULES", "iter_modules", "load_inert", "walk_module"]
