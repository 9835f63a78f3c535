"""CIFAR-10 / CIFAR-100 in their original python-pickle batch format, read safely.

The batches are pickles of ``{b"data": uint8 [N, 3072], b"labels" | b"fine_labels": [N], ...}``.
Pickle can run code and can be made to do unbounded work, so a batch is read with an opcode-level
restricted unpickler (the pure-Python one, subclassed):

- globals resolve only to small wrappers of the numpy/codec functions a plain integer array and
  protocol-2 bytes need (``_reconstruct``, ``dtype``, ``scalar``, ``_frombuffer``, latin-1
  ``_codecs.encode``, empty ``bytes()``); each wrapper checks its arguments, so nothing can
  allocate more than the file carries;
- REDUCE calls only those wrappers; BUILD only re-states an integer ndarray or dtype;
- dict keys must be bytes/str/int and sets are refused, so no crafted key can be hashed
  (hashing a memo-shared nested tuple is exponential);
- the loaded object's types and shapes are validated before anything is converted.

Every failure becomes a DatasetError that names the file.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any, Callable, NoReturn

import numpy as np

from mirrordet.utils.checked_unpickler import CheckedKeyUnpickler, empty_bytes, latin1_encode, refuse_opcode
from mirrordet.utils.errors import DatasetError

MAX_BATCH_BYTES = 512 * 2**20  # real batches are ~31 MB (CIFAR-10) / ~155 MB (CIFAR-100 train)
PIXELS = 3 * 32 * 32  # one image row of b"data": R plane, G plane, B plane, each 32x32
_INT_CODES = frozenset(f"{o}{k}{n}" for o in ("", "<", ">", "|", "=") for k in "iu" for n in (1, 2, 4, 8))
_BYTE_ORDERS = frozenset("<>|=")


def _text(x: Any) -> str | None:
    """str, or latin-1 bytes as str (protocol-2 pickles of Python 2 give bytes); else None."""
    if type(x) is str:
        return x
    if type(x) is bytes and len(x) <= 16:
        return x.decode("latin1")
    return None


def _is_int(x: Any) -> bool:
    """A python int or numpy integer scalar (bools excluded)."""
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def _int_shape(shape: Any) -> bool:
    """A tuple of non-negative python ints (checked one level deep, never recursing)."""
    return type(shape) is tuple and all(type(s) is int and s >= 0 for s in shape)


def _int_dtype(dt: Any) -> bool:
    """A plain integer numpy dtype (no fields, no objects)."""
    return isinstance(dt, np.dtype) and dt.kind in "iu" and dt.fields is None and not dt.hasobject


def _safe_reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    """numpy's ``_reconstruct``: only the empty placeholder array numpy itself writes."""
    if subtype is not np.ndarray or shape != (0,) or _text(dtype) != "b":
        raise pickle.UnpicklingError("_reconstruct is only allowed as numpy writes it: (ndarray, (0,), b'b')")
    return np.ndarray((0,), np.int8)


def _safe_dtype(obj: Any, align: Any = False, copy: Any = True) -> np.dtype:
    """``numpy.dtype`` of an integer type code only ('u1', '<i8', ...)."""
    code = _text(obj)
    if code not in _INT_CODES:
        raise pickle.UnpicklingError(f"dtype {code or type(obj).__name__!r} is not allowed (integer types only)")
    return np.dtype(code, copy=True)  # as numpy's own pickles ask: BUILD then sets the byte order


def _safe_scalar(dtype: Any, data: Any = b"") -> np.integer:
    """``numpy...multiarray.scalar``: one integer scalar from its itemsize raw bytes."""
    if not _int_dtype(dtype) or type(data) is not bytes or len(data) != dtype.itemsize:
        raise pickle.UnpicklingError("scalar must be an integer dtype and its raw bytes")
    return np.frombuffer(data, dtype)[0]


def _safe_frombuffer(buf: Any, dtype: Any, shape: Any, order: Any = "C") -> np.ndarray:
    """numpy's ``_frombuffer`` (protocol-5 arrays): raw bytes -> integer array of ``shape``."""
    if type(buf) not in (bytes, bytearray) or not _int_dtype(dtype) or not _int_shape(shape):
        raise pickle.UnpicklingError("_frombuffer must be raw bytes, an integer dtype and an int shape")
    if _text(order) not in ("C", "F"):
        raise pickle.UnpicklingError("_frombuffer order must be 'C' or 'F'")
    return np.frombuffer(buf, dtype=dtype).reshape(shape, order=_text(order))  # ValueError on a size mismatch


_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _safe_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _safe_reconstruct,
    ("numpy", "ndarray"): np.ndarray,  # only as _reconstruct's first argument: REDUCE refuses to call it
    ("numpy", "dtype"): _safe_dtype,
    ("numpy.core.multiarray", "scalar"): _safe_scalar,
    ("numpy._core.multiarray", "scalar"): _safe_scalar,
    ("numpy.core.numeric", "_frombuffer"): _safe_frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _safe_frombuffer,
    ("_codecs", "encode"): latin1_encode,
    ("__builtin__", "bytes"): empty_bytes,
    ("builtins", "bytes"): empty_bytes,
}
_CALLABLES = (_safe_reconstruct, _safe_dtype, _safe_scalar, _safe_frombuffer, latin1_encode, empty_bytes)
_KEY_TYPES = (bytes, str, int)
# Opcodes a CIFAR batch never needs: sets (their items get hashed), object instantiation that
# bypasses REDUCE, the copyreg extension registry, persistent ids and out-of-band buffers.
_REFUSED_OPCODES = {
    pickle.EMPTY_SET: "EMPTY_SET", pickle.ADDITEMS: "ADDITEMS", pickle.FROZENSET: "FROZENSET", pickle.INST: "INST",
    pickle.OBJ: "OBJ", pickle.NEWOBJ: "NEWOBJ", pickle.NEWOBJ_EX: "NEWOBJ_EX", pickle.EXT1: "EXT1",
    pickle.EXT2: "EXT2", pickle.EXT4: "EXT4", pickle.PERSID: "PERSID", pickle.BINPERSID: "BINPERSID",
    pickle.NEXT_BUFFER: "NEXT_BUFFER", pickle.READONLY_BUFFER: "READONLY_BUFFER",
}


class _RestrictedUnpickler(CheckedKeyUnpickler):
    """Unpickles plain data plus integer numpy arrays; see the module docstring for the rules."""

    key_types = _KEY_TYPES
    dispatch = dict(CheckedKeyUnpickler.dispatch)

    def find_class(self, module: str, name: str) -> Any:
        """The wrapper of an allowed global; ``UnpicklingError`` naming any other."""
        fn = _GLOBALS.get((module, name)) if type(module) is str and type(name) is str else None
        if fn is None:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR batch")
        return fn

    def load_reduce(self) -> None:
        """REDUCE: call an allowed wrapper only (never a class such as ndarray)."""
        args = self.stack.pop()
        func = self.stack[-1]
        if not any(func is f for f in _CALLABLES) or type(args) is not tuple:
            what = func.__name__ if isinstance(func, type) else type(func).__name__
            raise pickle.UnpicklingError(f"calling {what} is not allowed in a CIFAR batch")
        self.stack[-1] = func(*args)

    def load_build(self) -> None:
        """BUILD: set the state of an integer ndarray or dtype only, with checked contents."""
        state = self.stack.pop()
        inst = self.stack[-1]
        if isinstance(inst, np.dtype):
            order = _text(state[1]) if type(state) is tuple and len(state) >= 2 else None
            if order not in _BYTE_ORDERS:
                raise pickle.UnpicklingError("bad dtype state")
            inst.__setstate__((3, order, None, None, None, -1, -1, 0))  # the canonical state of an int dtype
        elif isinstance(inst, np.ndarray):
            if type(state) is not tuple or len(state) != 5:
                raise pickle.UnpicklingError("bad ndarray state")
            _, shape, dtype, _, raw = state
            if not _int_shape(shape) or not _int_dtype(dtype) or type(raw) not in (bytes, bytearray):
                raise pickle.UnpicklingError("ndarray state must be an int shape, an integer dtype and raw bytes")
            inst.__setstate__(state)  # numpy raises ValueError when the bytes do not fill the shape
        else:
            raise pickle.UnpicklingError(f"setting the state of {type(inst).__name__} objects is not allowed")

    dispatch[pickle.REDUCE[0]] = load_reduce
    dispatch[pickle.BUILD[0]] = load_build
    dispatch.update({code[0]: refuse_opcode(name, "a CIFAR batch") for code, name in _REFUSED_OPCODES.items()})


def _load(path: Path) -> Any:
    """Unpickle ``path`` with the restricted unpickler. Raises DatasetError naming the file."""
    try:
        size = path.stat().st_size
        if size > MAX_BATCH_BYTES:
            raise DatasetError(f"{path}: {size / 2**20:.0f} MiB is too large for a CIFAR batch "
                               f"(limit {MAX_BATCH_BYTES // 2**20} MiB)")
        raw = path.read_bytes()
    except OSError as e:
        raise DatasetError(f"{path}: cannot read CIFAR batch ({e.strerror or e})") from None
    try:
        return _RestrictedUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as e:  # truncated, garbage, refused globals/opcodes, numpy ValueError, Recursion/MemoryError
        reason = str(e)[:200] or "no details"
        raise DatasetError(f"{path}: not a readable CIFAR batch ({type(e).__name__}: {reason})") from None


def _labels(path: Path, labels: Any, key: bytes) -> np.ndarray:
    """Validated labels -> int64 [N]: a list/tuple of ints (checked one level, stopping at the first
    bad element) or a 1-D integer ndarray."""
    if isinstance(labels, np.ndarray):
        if labels.ndim != 1 or not _int_dtype(labels.dtype):
            raise DatasetError(f"{path}: {key!r} must be a 1-D integer array, got {labels.dtype} {labels.shape}")
        if labels.dtype == np.uint64 and labels.size and labels.max() > np.iinfo(np.int64).max:
            raise DatasetError(f"{path}: {key!r} has labels too large for int64")
        return labels.astype(np.int64)
    if type(labels) not in (list, tuple):
        raise DatasetError(f"{path}: {key!r} must be a list of ints, got {type(labels).__name__}")
    for i, x in enumerate(labels):
        if not _is_int(x):
            raise DatasetError(f"{path}: {key!r}[{i}] must be an int, got {type(x).__name__}")
    try:
        return np.fromiter((int(x) for x in labels), dtype=np.int64, count=len(labels))
    except OverflowError:
        raise DatasetError(f"{path}: {key!r} has labels too large for int64") from None


def _pixels(path: Path, data: Any, n: int) -> np.ndarray:
    """Validated b"data" -> uint8 [n, 3072]. Raises DatasetError on any other type, dtype or shape."""
    if not isinstance(data, np.ndarray):
        raise DatasetError(f"{path}: b'data' must be a numpy array, got {type(data).__name__}")
    if not _int_dtype(data.dtype) or data.shape != (n, PIXELS):
        raise DatasetError(f"{path}: b'data' must be uint8 [N, {PIXELS}] matching {n} labels, "
                           f"got {data.dtype} {data.shape}")
    if data.dtype != np.uint8:
        if data.size and (data.min() < 0 or data.max() > 255):
            raise DatasetError(f"{path}: b'data' has values outside 0..255")
        data = data.astype(np.uint8)
    return data


def read_cifar_batch(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR batch file -> (images uint8 [N, 32, 32, 3] BGR, labels int64 [N]).

    Raises:
        DatasetError: unreadable or too large file, not a CIFAR batch, wrong types or shapes, or a
            pickle that asks for anything but plain data (the message names the file).
    """
    path = Path(path)
    d = _load(path)
    if type(d) is not dict:
        raise DatasetError(f"{path}: a CIFAR batch must be a dict, got {type(d).__name__}")
    key = b"labels" if b"labels" in d else b"fine_labels" if b"fine_labels" in d else None
    if key is None or b"data" not in d:
        raise DatasetError(f"{path}: a CIFAR batch needs b'data' and b'labels' (or b'fine_labels')")
    labels = _labels(path, d[key], key)
    data = _pixels(path, d[b"data"], len(labels))
    rgb = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(rgb[..., ::-1]), labels


def is_cifar_batch(path: Path) -> bool:
    """A file (not an image, not a .txt list) that starts like a pickle: treated as a CIFAR batch."""
    if not path.is_file() or path.suffix.lower() in (".txt", ".png", ".jpg", ".jpeg", ".json", ".yaml"):
        return False
    with open(path, "rb") as f:
        return f.read(1) == b"\x80"
