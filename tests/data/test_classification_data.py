"""Classification data: CIFAR pickle batches (real layout, read safely) and ImageFolder trees."""

import logging
import pickle
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from mirrordet.data.cifar import read_cifar_batch
from mirrordet.data.classification import build_classification_dataset
from mirrordet.utils.errors import DatasetError
from mirrordet.utils.log import LOGGER


def write_cifar_batch(path, n: int, nc: int = 10, seed: int = 0, label_key: bytes = b"labels"):
    """A batch in the exact python-pickle layout of cifar-10-batches-py."""
    rng = np.random.default_rng(seed)
    labels = [int(x) for x in rng.integers(0, nc, n)]
    data = np.zeros((n, 3072), np.uint8)
    for i, c in enumerate(labels):  # class c: a red-channel level, so labels are learnable
        data[i, :1024] = 20 * c + 10
        data[i, 1024:] = rng.integers(0, 60, 2048)
    batch = {b"batch_label": b"training batch 1 of 5", label_key: labels, b"data": data,
             b"filenames": [f"img{i}.png".encode() for i in range(n)]}
    with open(path, "wb") as f:
        pickle.dump(batch, f, protocol=2)
    return labels


def test_read_cifar_batch_layout(tmp_path):
    labels = write_cifar_batch(tmp_path / "data_batch_1", 6)
    images, got = read_cifar_batch(tmp_path / "data_batch_1")
    assert images.shape == (6, 32, 32, 3) and images.dtype == np.uint8
    assert got.tolist() == labels
    assert (images[:, :, :, 2] == (20 * np.asarray(labels) + 10)[:, None, None]).all()  # red plane -> BGR[2]


def test_cifar_pickle_payload_never_runs(tmp_path):
    marker = tmp_path / "PWNED"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    with open(tmp_path / "data_batch_1", "wb") as f:
        pickle.dump({b"data": Evil(), b"labels": [0]}, f)
    with pytest.raises(DatasetError, match="not allowed"):
        read_cifar_batch(tmp_path / "data_batch_1")
    assert not marker.exists()


def test_image_folder_and_cifar_splits(tmp_path):
    names = {0: "cat", 1: "dog"}
    for split in ("train", "val"):
        for c, name in names.items():
            (tmp_path / split / name).mkdir(parents=True)
            for i in range(3):
                cv2.imwrite(str(tmp_path / split / name / f"{i}.png"), np.full((40, 50, 3), 100 * c, np.uint8))
    data = {"yaml_file": "x.yaml", "names": names, "train": tmp_path / "train", "val": tmp_path / "val"}
    ds = build_classification_dataset(data, "train", 32, augment=True, hyp={})
    assert len(ds) == 6 and sorted(ds.labels().tolist()) == [0, 0, 0, 1, 1, 1]
    item = ds[0]
    assert item["img"].shape == (3, 32, 32) and int(item["cls"]) == 0
    (tmp_path / "train" / "bird").mkdir()
    with pytest.raises(DatasetError, match="'bird' is not a class"):
        build_classification_dataset(data, "train", 32, augment=False)


def test_cifar_labels_out_of_range(tmp_path):
    write_cifar_batch(tmp_path / "b", 4, nc=10)
    data = {"yaml_file": "x.yaml", "names": {0: "a", 1: "b"}, "train": tmp_path / "b"}
    with pytest.raises(DatasetError, match="labels outside"):
        build_classification_dataset(data, "train", 32, augment=False)


class _Records(logging.Handler):
    """Keeps the records the package logger emits (it may not propagate to caplog's root handler)."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture
def mirrordet_log():
    handler = _Records()
    level = LOGGER.level
    LOGGER.addHandler(handler)
    LOGGER.setLevel(logging.INFO)
    yield handler.records
    LOGGER.removeHandler(handler)
    LOGGER.setLevel(level)


def _image_folder_with_corrupt_files(root):
    names = {0: "cat", 1: "dog"}
    for c, name in names.items():
        (root / name).mkdir(parents=True)
        for i in range(2):
            assert cv2.imwrite(str(root / name / f"{i}.png"), np.full((40, 50, 3), 100 * c + 10 * i, np.uint8))
    (root / "cat" / "bad.jpg").write_bytes(b"\xff\xd8 not a jpeg " + bytes(range(256)))
    (root / "dog" / "empty.png").write_bytes(b"")
    return {"yaml_file": "x.yaml", "names": names, "train": root}


def test_corrupt_images_skipped_and_reported(tmp_path, mirrordet_log):
    data = _image_folder_with_corrupt_files(tmp_path / "train")
    ds = build_classification_dataset(data, "train", 32, augment=False)
    kept = sorted((Path(f).parent.name, Path(f).name) for f, _ in ds.samples)
    assert kept == [("cat", "0.png"), ("cat", "1.png"), ("dog", "0.png"), ("dog", "1.png")]
    assert sorted(ds.labels().tolist()) == [0, 0, 1, 1]
    for i in range(len(ds)):
        item = ds[i]
        assert item["img"].shape == (3, 32, 32) and int(item["cls"]) == ds.samples[i][1]
    warnings = [r.getMessage() for r in mirrordet_log if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "skipped 2 of 6" in warnings[0] and "bad.jpg" in warnings[0] and "empty.png" in warnings[0]


def test_clean_image_folder_logs_no_warning(tmp_path, mirrordet_log):
    data = _image_folder_with_corrupt_files(tmp_path / "train")
    (tmp_path / "train" / "cat" / "bad.jpg").unlink()
    (tmp_path / "train" / "dog" / "empty.png").unlink()
    assert len(build_classification_dataset(data, "train", 32, augment=False)) == 4
    assert not [r for r in mirrordet_log if r.levelno >= logging.WARNING]


def test_all_images_unreadable_is_no_images_error(tmp_path):
    root = tmp_path / "train"
    (root / "cat").mkdir(parents=True)
    (root / "cat" / "bad.jpg").write_bytes(b"garbage")
    data = {"yaml_file": "x.yaml", "names": {0: "cat"}, "train": root}
    with pytest.raises(DatasetError, match="split `train` has no images"):
        build_classification_dataset(data, "train", 32, augment=False)


def test_image_changed_after_check_is_dataset_error(tmp_path):
    data = _image_folder_with_corrupt_files(tmp_path / "train")
    ds = build_classification_dataset(data, "train", 32, augment=False)
    victim = ds.samples[0][0]
    Path(victim).write_bytes(b"truncated since")
    with pytest.raises(DatasetError, match=f"cannot read image {re.escape(victim)}"):
        ds[0]
