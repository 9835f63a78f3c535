"""read_cifar_batch: real batch layouts read back exactly; hostile or broken pickles fail fast as DatasetError."""

import os
import pickle
import time

import numpy as np
import pytest
from numpy._core.multiarray import _reconstruct
from numpy._core.numeric import _frombuffer

from mirrordet.data import cifar
from mirrordet.data.cifar import read_cifar_batch
from mirrordet.utils.errors import DatasetError

N = 5


class Reduce:
    """Pickles as ``fn(*args)`` (plus BUILD ``state``) without calling anything at dump time."""

    def __init__(self, *reduce_value):
        self.reduce_value = reduce_value

    def __reduce__(self):
        return self.reduce_value


def real_batch(n: int = N, label_key: bytes = b"labels") -> tuple[dict, np.ndarray, list]:
    """A dict in the layout of cifar-10-batches-py: data uint8 [n, 3072] (R, G, B planes), labels list."""
    rng = np.random.default_rng(1)
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    labels = [int(x) for x in rng.integers(0, 100, n)]
    batch = {b"batch_label": b"training batch 1 of 5", label_key: labels, b"data": data,
             b"filenames": [f"img_{i}.png".encode() for i in range(n)]}
    return batch, data, labels


def shared_lists(depth: int = 40) -> list:
    """L0=[0]; Li=[Li-1, Li-1]: tiny as a pickle (memo), 2**depth elements once expanded."""
    nested = [0]
    for _ in range(depth):
        nested = [nested, nested]
    return nested


def shared_tuple_ops(depth: int = 40) -> bytes:
    """Opcodes leaving T_depth on the stack, T0=(0,), Ti=(Ti-1, Ti-1): hashing it takes 2**depth steps.

    Written by hand because building such a dict key or set in Python would itself hang.
    """
    def get(i: int) -> bytes:
        return pickle.BINGET + bytes([i])

    ops = pickle.BININT1 + b"\x00" + pickle.TUPLE1 + pickle.MEMOIZE + pickle.POP
    for i in range(depth):
        ops += get(i) + get(i) + pickle.TUPLE2 + pickle.MEMOIZE + pickle.POP
    return ops + get(depth)


def dumps_with(**replace) -> bytes:
    """A real batch with some keys replaced, pickled with the default protocol."""
    batch, _, _ = real_batch()
    batch.update({k.encode(): v for k, v in replace.items()})
    return pickle.dumps(batch)


def _truncated(_marker) -> bytes:
    blob = pickle.dumps(real_batch()[0], protocol=2)
    return blob[: len(blob) // 2]


def _os_system(marker) -> bytes:
    return dumps_with(data=Reduce(os.system, (f"echo hi > {marker}",)))


def _open_file(marker) -> bytes:
    return dumps_with(data=Reduce(open, (str(marker), "w")))


PROTO4 = pickle.PROTO + b"\x04"
BAD = [  # id, builder(marker path) -> pickle bytes, expected message (regex)
    ("labels_shared_list_bomb", lambda m: dumps_with(labels=shared_lists()),
     r"b'labels'\[0\] must be an int, got list"),
    ("data_shared_list_bomb", lambda m: dumps_with(data=shared_lists()), r"b'data' must be a numpy array, got list"),
    ("dict_key_tuple_bomb", lambda m: PROTO4 + pickle.EMPTY_DICT + shared_tuple_ops() + b"K\x01" + pickle.SETITEM
     + pickle.STOP, "dict key of type tuple is not allowed"),
    ("set_tuple_bomb", lambda m: PROTO4 + pickle.EMPTY_SET + pickle.MARK + shared_tuple_ops() + pickle.ADDITEMS
     + pickle.STOP, "opcode EMPTY_SET is not allowed"),
    ("frozenset_tuple_bomb", lambda m: PROTO4 + pickle.MARK + shared_tuple_ops() + pickle.FROZENSET + pickle.STOP,
     "opcode FROZENSET is not allowed"),
    ("os_system", _os_system, r"global (os|posix|nt)\.system is not allowed"),
    ("builtin_open", _open_file, r"global (io|builtins)\.open is not allowed"),
    ("ndarray_called_directly", lambda m: dumps_with(data=Reduce(np.ndarray, ((10**5, 3072), "O"))),
     "calling ndarray is not allowed"),
    ("object_dtype", lambda m: dumps_with(data=np.array([None, 1], dtype=object)), "dtype 'O8' is not allowed"),
    ("setstate_shape_larger_than_data", lambda m: dumps_with(data=Reduce(
        _reconstruct, (np.ndarray, (0,), b"b"), (1, (10**6, 3072), np.dtype(np.uint8), False, bytes(3072)))),
     "ValueError"),
    ("frombuffer_shape_larger_than_data", lambda m: dumps_with(data=Reduce(
        _frombuffer, (bytes(3072), np.dtype(np.uint8), (10**6, 3072), "C"))), "ValueError"),
    ("truncated", _truncated, "not a readable CIFAR batch"),
    ("random_bytes", lambda m: b"\x80" + np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
     "not a readable CIFAR batch"),
    ("empty_file", lambda m: b"", "not a readable CIFAR batch"),
    ("data_wrong_width", lambda m: dumps_with(data=np.zeros((N, 3071), np.uint8)), r"uint8 \[N, 3072\]"),
    ("data_3d", lambda m: dumps_with(data=np.zeros((N, 3, 1024), np.uint8)), r"uint8 \[N, 3072\]"),
    ("data_float", lambda m: dumps_with(data=np.zeros((N, 3072), np.float32)), "dtype 'f4' is not allowed"),
    ("data_out_of_uint8_range", lambda m: dumps_with(data=np.full((N, 3072), 256, np.int16)), "outside 0..255"),
    ("labels_string_element", lambda m: dumps_with(labels=[0, 1, "2", 3, 4]),
     r"b'labels'\[2\] must be an int, got str"),
    ("labels_bool_element", lambda m: dumps_with(labels=[0, True, 2, 3, 4]), r"b'labels'\[1\] must be an int"),
    ("labels_length_mismatch", lambda m: dumps_with(labels=[0, 1, 2]), "matching 3 labels"),
    ("labels_too_large", lambda m: dumps_with(labels=[0, 1, 2, 3, 2**70]), "too large for int64"),
    ("labels_2d_array", lambda m: dumps_with(labels=np.zeros((N, 1), np.int64)), "1-D integer array"),
    ("labels_dict", lambda m: dumps_with(labels={0: 1}), "must be a list of ints, got dict"),
    ("no_labels_key", lambda m: pickle.dumps({b"data": np.zeros((N, 3072), np.uint8)}), "needs b'data' and b'labels'"),
    ("top_level_list", lambda m: pickle.dumps([np.zeros((N, 3072), np.uint8), [0] * N]), "must be a dict, got list"),
]


@pytest.mark.parametrize("protocol", [2, pickle.DEFAULT_PROTOCOL, 5])
def test_real_batch_reads_back(tmp_path, protocol):
    batch, data, labels = real_batch()
    path = tmp_path / "data_batch_1"
    with open(path, "wb") as f:
        pickle.dump(batch, f, protocol=protocol)
    images, got = read_cifar_batch(path)
    assert images.shape == (N, 32, 32, 3) and images.dtype == np.uint8 and images.flags.c_contiguous
    assert got.dtype == np.int64 and got.tolist() == labels
    planes = data.reshape(N, 3, 32, 32)  # R, G, B planes
    assert images[3, 7, 9].tolist() == [planes[3, 2, 7, 9], planes[3, 1, 7, 9], planes[3, 0, 7, 9]]  # BGR
    assert (images[..., ::-1] == planes.transpose(0, 2, 3, 1)).all()


def test_cifar100_fine_labels_and_int_arrays(tmp_path):
    batch, data, labels = real_batch(label_key=b"fine_labels")
    batch[b"coarse_labels"] = [0] * N
    batch[b"data"] = data.astype(np.int16)  # another integer dtype, values within 0..255
    path = tmp_path / "train"
    path.write_bytes(pickle.dumps(batch))
    images, got = read_cifar_batch(path)
    assert got.tolist() == labels
    assert (images[..., ::-1] == data.reshape(N, 3, 32, 32).transpose(0, 2, 3, 1)).all()
    batch[b"fine_labels"] = np.asarray(labels, dtype=np.uint8)  # a 1-D integer array works too
    path.write_bytes(pickle.dumps(batch))
    assert read_cifar_batch(path)[1].tolist() == labels


def test_big_endian_arrays_read_back(tmp_path):
    batch, data, labels = real_batch()
    batch[b"data"], batch[b"labels"] = data.astype(">i4"), np.asarray(labels, ">i8")
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps(batch, protocol=2))
    images, got = read_cifar_batch(path)
    assert got.tolist() == labels and (images[..., ::-1] == data.reshape(N, 3, 32, 32).transpose(0, 2, 3, 1)).all()


@pytest.mark.parametrize("build, match", [(b, m) for _, b, m in BAD], ids=[i for i, _, _ in BAD])
def test_bad_batch_is_dataset_error(tmp_path, build, match):
    marker = tmp_path / "PAYLOAD_RAN"
    path = tmp_path / "data_batch_1"
    path.write_bytes(build(marker))
    start = time.monotonic()
    with pytest.raises(DatasetError, match=match) as info:
        read_cifar_batch(path)
    assert time.monotonic() - start < 2
    assert str(path) in str(info.value)
    assert not marker.exists()


def test_oversized_file_is_refused_unread(tmp_path, monkeypatch):
    path = tmp_path / "data_batch_1"
    with open(path, "wb") as f:
        f.write(b"\x80")
        f.truncate(cifar.MAX_BATCH_BYTES + 1)  # sparse: nothing is written
    monkeypatch.setattr(type(path), "read_bytes", lambda self: pytest.fail("an oversized batch was read"))
    with pytest.raises(DatasetError, match="too large for a CIFAR batch"):
        read_cifar_batch(path)


def test_missing_file_is_dataset_error(tmp_path):
    with pytest.raises(DatasetError, match="cannot read CIFAR batch"):
        read_cifar_batch(tmp_path / "nope")
