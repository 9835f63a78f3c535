"""CIFAR-10 / CIFAR-100 in their original python-pickle batch format, read safely.

The batches are pickles of ``{b"data": uint8 [N, 3072], b"labels" | b"fine_labels": [N], ...}``.
Pickle can run code, so they are read with an unpickler that resolves only the few numpy
globals a plain array needs; anything else in the file is refused with a DatasetError.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from mirrordet.utils.errors import DatasetError

_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"), ("_codecs", "encode"),
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR batch")
        return super().find_class(module, name)


def read_cifar_batch(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR batch file -> (images uint8 [N, 32, 32, 3] BGR, labels int64 [N]).

    Raises:
        DatasetError: not a CIFAR batch, or the pickle asks for anything but plain data.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            d = _RestrictedUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError) as e:
        raise DatasetError(f"{path}: not a readable CIFAR batch ({e})") from None
    if not isinstance(d, dict):
        raise DatasetError(f"{path}: a CIFAR batch must be a dict, got {type(d).__name__}")
    key = b"labels" if b"labels" in d else b"fine_labels" if b"fine_labels" in d else None
    data = d.get(b"data")
    if key is None or data is None:
        raise DatasetError(f"{path}: a CIFAR batch needs b'data' and b'labels' (or b'fine_labels')")
    data = np.asarray(data, dtype=np.uint8)
    labels = np.asarray(d[key], dtype=np.int64).reshape(-1)
    if data.ndim != 2 or data.shape[1] != 3072 or len(data) != len(labels):
        raise DatasetError(f"{path}: b'data' must be uint8 [N, 3072] matching {len(labels)} labels, got {data.shape}")
    rgb = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(rgb[..., ::-1]), labels


def is_cifar_batch(path: Path) -> bool:
    """A file (not an image, not a .txt list) that starts like a pickle: treated as a CIFAR batch."""
    if not path.is_file() or path.suffix.lower() in (".txt", ".png", ".jpg", ".jpeg", ".json", ".yaml"):
        return False
    with open(path, "rb") as f:
        return f.read(1) == b"\x80"
