"""Classification data: CIFAR pickle batches (real layout, read safely) and ImageFolder trees."""

import pickle

import cv2
import numpy as np
import pytest

from mirrordet.data.cifar import read_cifar_batch
from mirrordet.data.classification import build_classification_dataset
from mirrordet.utils.errors import DatasetError


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
