"""DetectionDataset: the sample contract, validation determinism, ground truth, builder errors."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from mirrordet.data.dataset import DetectionDataset, build_detection_dataset
from mirrordet.ops.boxes import scale_boxes, xywh2xyxy
from mirrordet.utils.errors import DatasetError



@pytest.fixture(scope="module")
def shapes(make_shapes) -> dict:
    return make_shapes(12, 4, 80)


def _check_sample(s: dict, imgsz: int) -> None:
    assert s["img"].dtype == torch.uint8 and s["img"].shape == (3, imgsz, imgsz)
    n = len(s["cls"])
    assert s["cls"].dtype == torch.float32 and s["cls"].shape == (n, 1)
    assert s["bboxes"].dtype == torch.float32 and s["bboxes"].shape == (n, 4)
    xyxy = xywh2xyxy(s["bboxes"])
    assert (xyxy >= -1e-6).all() and (xyxy <= 1 + 1e-6).all()
    assert (s["bboxes"][:, 2:] > 0).all()
    assert ((s["cls"] >= 0) & (s["cls"] < 4)).all()
    assert isinstance(s["im_file"], str) and s["resized_shape"] == (imgsz, imgsz)
    (gh, gw), (pw, ph) = s["ratio_pad"]
    assert gh > 0 and gw > 0 and pw >= 0 and ph >= 0


def test_train_samples_follow_the_contract(shapes) -> None:
    ds = build_detection_dataset(
        shapes, "train", 64, augment=True, hyp={"degrees": 10, "shear": 5, "flipud": 0.5}, seed=1
    )
    assert len(ds) == 12 and ds.nc == 4 and ds.category_ids == [0, 1, 2, 3] and ds.mosaic == 1.0
    n_boxes = 0
    for i in range(len(ds)):
        s = ds[i]
        _check_sample(s, 64)
        n_boxes += len(s["cls"])
    assert n_boxes > 12
    ds.close_mosaic()
    assert ds.mosaic == 0.0
    for i in range(4):
        _check_sample(ds[i], 64)


def test_validation_is_deterministic_and_maps_back(shapes) -> None:
    ds = build_detection_dataset(shapes, "val", 96, augment=False, hyp={})
    for i in range(len(ds)):
        a, b = ds[i], ds[i]
        assert torch.equal(a["img"], b["img"]) and torch.equal(a["bboxes"], b["bboxes"])
        _check_sample(a, 96)
        cls, gt = ds.ground_truth(i)
        assert a["cls"].flatten().long().tolist() == cls.tolist()
        back = scale_boxes(xywh2xyxy(a["bboxes"].double()) * 96, (96, 96), a["ori_shape"], a["ratio_pad"])
        np.testing.assert_allclose(back.numpy(), gt, atol=1e-3)
        assert ds.image_id(i) == i


def test_letterbox_of_non_square_image(tmp_path: Path) -> None:
    im = tmp_path / "images" / "a.png"
    im.parent.mkdir()
    cv2.imwrite(str(im), np.full((30, 60, 3), 200, np.uint8))
    rec = {
        "im_file": str(im),
        "shape": (30, 60),
        "cls": np.array([1]),
        "bboxes": np.array([[0.5, 0.5, 0.5, 0.5]], np.float32),
    }
    ds = DetectionDataset([rec], 64, augment=False, names=["a", "b"])
    s = ds[0]
    assert s["ori_shape"] == (30, 60) and s["ratio_pad"] == ((32 / 30, 64 / 60), (0.0, 16.0))
    np.testing.assert_allclose(s["bboxes"].numpy(), [[0.5, 0.5, 0.5, 0.25]], atol=1e-6)
    assert (s["img"][:, :16] == 114).all() and (s["img"][:, 16:48] == 200).all()
    cls, gt = ds.ground_truth(0)
    np.testing.assert_allclose(gt, [[15, 7.5, 45, 22.5]])


def test_ram_cache_gives_identical_samples(shapes) -> None:
    a = build_detection_dataset(shapes, "val", 64, augment=False, hyp={})
    b = build_detection_dataset(shapes, "val", 64, augment=False, hyp={}, cache=True)
    for i in range(len(a)):
        assert torch.equal(a[i]["img"], b[i]["img"]) and torch.equal(a[i]["bboxes"], b[i]["bboxes"])


def test_same_seed_same_augmentation(shapes) -> None:
    a = build_detection_dataset(shapes, "train", 64, augment=True, hyp={}, seed=5)
    b = build_detection_dataset(shapes, "train", 64, augment=True, hyp={}, seed=5)
    for i in range(3):
        assert torch.equal(a[i]["img"], b[i]["img"]) and torch.equal(a[i]["bboxes"], b[i]["bboxes"])


def test_fraction(shapes) -> None:
    ds = build_detection_dataset(shapes, "train", 64, augment=False, hyp={}, fraction=0.25)
    assert len(ds) == 3
    with pytest.raises(DatasetError, match="fraction"):
        build_detection_dataset(shapes, "train", 64, augment=False, hyp={}, fraction=0)


def test_builder_errors(tmp_path: Path, shapes) -> None:
    with pytest.raises(DatasetError, match="`test`"):
        build_detection_dataset(shapes, "test", 64, augment=False, hyp={})
    empty = tmp_path / "e" / "images"
    empty.mkdir(parents=True)
    with pytest.raises(DatasetError, match="no images"):
        build_detection_dataset(shapes | {"val": empty}, "val", 64, augment=False, hyp={})
    bad = tmp_path / "b"
    (bad / "images").mkdir(parents=True)
    (bad / "labels").mkdir()
    for k in range(3):
        cv2.imwrite(str(bad / "images" / f"{k}.png"), np.zeros((10, 10, 3), np.uint8))
        (bad / "labels" / f"{k}.txt").write_text("9 0.5 0.5 0.2 0.2\n")
    with pytest.raises(DatasetError, match="all 3 label rows failed"):
        build_detection_dataset(shapes | {"val": bad / "images"}, "val", 64, augment=False, hyp={})
    nolabels = tmp_path / "n" / "images"
    nolabels.mkdir(parents=True)
    cv2.imwrite(str(nolabels / "a.png"), np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(DatasetError, match="no labels found"):
        build_detection_dataset(shapes | {"val": nolabels}, "val", 64, augment=False, hyp={})
    corrupt = tmp_path / "c" / "images"
    corrupt.mkdir(parents=True)
    (corrupt / "a.jpg").write_bytes(b"xx")
    with pytest.raises(DatasetError, match="corrupt"):
        build_detection_dataset(shapes | {"val": corrupt}, "val", 64, augment=False, hyp={})


def test_mixup_blends_two_samples_and_keeps_both_label_sets(shapes) -> None:
    plain = build_detection_dataset(shapes, "train", 64, augment=True, hyp={"mosaic": 0.0, "fliplr": 0.0})
    mixed = build_detection_dataset(shapes, "train", 64, augment=True, hyp={"mosaic": 0.0, "fliplr": 0.0,
                                                                               "mixup": 1.0})
    more = 0
    for i in range(len(plain)):
        a, b = plain[i], mixed[i]
        assert len(b["cls"]) >= len(a["cls"]) and not torch.equal(a["img"], b["img"])
        more += len(b["cls"]) > len(a["cls"])
        again = mixed[i]
        assert torch.equal(again["img"], b["img"]) and torch.equal(again["bboxes"], b["bboxes"])  # same draws
    assert more > 0  # the second sample's boxes are kept


def test_mixup_zero_is_the_default_pipeline(shapes) -> None:
    """An explicit mixup=0 gives the default samples (the mixup branch is skipped before any random draw)."""
    base = build_detection_dataset(shapes, "train", 64, augment=True, hyp={"mosaic": 1.0})
    zero = build_detection_dataset(shapes, "train", 64, augment=True, hyp={"mosaic": 1.0, "mixup": 0.0})
    for i in range(len(base)):
        assert torch.equal(base[i]["img"], zero[i]["img"]) and torch.equal(base[i]["bboxes"], zero[i]["bboxes"])


def test_disk_cache_writes_npy_once_and_gives_identical_samples(shapes, tmp_path) -> None:
    import shutil

    from mirrordet.data.synthetic import generate_shapes

    root = generate_shapes(tmp_path / "s", n_train=4, n_val=3, imgsz=64, seed=1)
    data = dict(shapes, path=root, train=root / "images" / "train", val=root / "images" / "val")
    plain = build_detection_dataset(data, "val", 64, augment=False, hyp={})
    disk = build_detection_dataset(data, "val", 64, augment=False, hyp={}, cache="disk")
    npys = sorted((root / "images" / "val").glob("*.64.npy"))
    assert len(npys) == 3
    for i in range(len(plain)):
        assert torch.equal(plain[i]["img"], disk[i]["img"])
    mtimes = [p.stat().st_mtime_ns for p in npys]
    build_detection_dataset(data, "val", 64, augment=False, hyp={}, cache="disk")  # reused, not rewritten
    assert [p.stat().st_mtime_ns for p in npys] == mtimes
    shutil.rmtree(root)


def _assert_labels_map_back(ds: DetectionDataset) -> None:
    """Every sample's normalized boxes, mapped back through its ratio_pad, are the image's ground truth."""
    for i in range(len(ds)):
        s = ds[i]
        h, w = s["resized_shape"]
        scale = torch.tensor([w, h, w, h], dtype=torch.float64)
        back = scale_boxes(xywh2xyxy(s["bboxes"].double()) * scale, (h, w), s["ori_shape"], s["ratio_pad"])
        np.testing.assert_allclose(back.numpy(), ds.ground_truth(i)[1], atol=1e-3)


def test_a_models_resize_rule_sizes_every_image_and_pads_it_into_its_batch(tmp_path: Path) -> None:
    """resize=(min, max): each image scaled as torchvision's detection transform (short side min, long side at most
    max), padded (not scaled) into the smallest stride-multiple canvas of its batch; labels map back exactly."""
    from mirrordet.data.collate import collate_detection
    from mirrordet.data.preprocess import resized_long_side

    root = tmp_path / "r"
    sizes = [(40, 96), (96, 40), (60, 90), (90, 60), (64, 64), (30, 96)]  # (h, w)
    (root / "images" / "val").mkdir(parents=True)
    (root / "labels" / "val").mkdir(parents=True)
    for k, (h, w) in enumerate(sizes):
        img = np.full((h, w, 3), 90, np.uint8)
        img[h // 4: 3 * h // 4, w // 4: 3 * w // 4] = 200
        cv2.imwrite(str(root / "images" / "val" / f"{k}.png"), img)
        (root / "labels" / "val" / f"{k}.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    data = {"yaml_file": root / "x.yaml", "path": root, "names": {0: "a"}, "nc": 1, "val": root / "images" / "val"}
    ds = build_detection_dataset(data, "val", 32, augment=False, hyp={}, cache="ram")  # the cache is at imgsz 32
    ds.set_rect(batch=2, stride=32, resize=(80, 150))
    assert ds.pad_only
    for start in range(0, len(ds), 2):
        items = [ds[i] for i in range(start, min(start + 2, len(ds)))]
        batch = collate_detection(items)
        h, w = batch["img"].shape[-2:]
        needs = []
        for i, s in zip(range(start, start + 2), items):
            h0, w0 = s["ori_shape"]
            (gh, gw), (pw, ph) = s["ratio_pad"]
            long = resized_long_side(h0, w0, 80, 150)
            assert abs(max(h0 * gh, w0 * gw) - long) <= 0.5  # the rule's size, not imgsz
            assert min(h0 * gh, w0 * gw) <= 80.5 and max(h0 * gh, w0 * gw) <= 150.5
            needs.append((round(h0 * gh), round(w0 * gw)))
        assert h == -(-max(n[0] for n in needs) // 32) * 32 and w == -(-max(n[1] for n in needs) // 32) * 32
    _assert_labels_map_back(ds)


def test_rectangular_validation_batches_map_back(tmp_path: Path) -> None:
    """rect: images sorted by aspect ratio, each batch letterboxed to its own stride-multiple shape, labels exact."""
    from mirrordet.data.collate import collate_detection

    root = tmp_path / "r"
    sizes = [(40, 96), (96, 40), (60, 90), (90, 60), (64, 64), (30, 96)]  # (h, w)
    for split in ("val",):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for k, (h, w) in enumerate(sizes):
            cv2.imwrite(str(root / "images" / split / f"{k}.png"), np.full((h, w, 3), 90, np.uint8))
            (root / "labels" / split / f"{k}.txt").write_text("0 0.5 0.5 0.4 0.4\n")
    data = {"yaml_file": root / "x.yaml", "path": root, "names": {0: "a"}, "nc": 1, "val": root / "images" / "val"}
    ds = build_detection_dataset(data, "val", 96, augment=False, hyp={})
    ds.set_rect(batch=2, stride=32)
    ratios = [r["shape"][0] / r["shape"][1] for r in ds.records]
    assert ratios == sorted(ratios)
    shapes = set()
    for start in range(0, len(ds), 2):
        batch = collate_detection([ds[i] for i in range(start, min(start + 2, len(ds)))])
        h, w = batch["img"].shape[-2:]
        assert h % 32 == 0 and w % 32 == 0 and max(h, w) == 96
        shapes.add((h, w))
    assert len(shapes) > 1 and (64, 96) in shapes  # landscape batches are lower than imgsz
    _assert_labels_map_back(ds)
