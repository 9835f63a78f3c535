"""Segmentation data: polygons checked and read from YOLO-seg txt and COCO JSON (polygons and RLE), rasterized
into index maps, cached, and carried through every augmentation together with the image."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from mirrordet.data.coco import load_coco_records
from mirrordet.data.collate import collate_detection
from mirrordet.data.dataset_seg import SegmentationDataset
from mirrordet.data.labels import load_yolo_records, parse_label_file
from mirrordet.data.segments import (
    boxes_from_index_map,
    coco_segmentation,
    index_map,
    mask_to_polygons,
    parse_polygon,
    relabel,
)


@pytest.mark.parametrize("values, why", [
    ([0.1, 0.1, 0.5, 0.5], "fewer than 3 points"),
    ([0.1, 0.1, 0.5, 0.5, 0.2], "odd number"),
    ([0.1, 0.1, 0.5, float("nan"), 0.2, 0.9], "non-finite"),
    ([0.1, 0.1, 1.5, 0.5, 0.2, 0.9], "outside the image"),
    ([0.1, 0.1, 0.5, 0.1, 0.9, 0.1], "without area"),
])
def test_bad_polygons_are_refused_with_a_reason(values, why):
    poly, reason = parse_polygon(values)
    assert poly is None and why in reason


def test_index_map_draws_larger_instances_first_and_boxes_come_back():
    square = [np.array([[0.25, 0.25], [0.75, 0.25], [0.75, 0.75], [0.25, 0.75]], np.float32)]
    whole = [np.array([[0, 0], [1, 0], [1, 1], [0, 1]], np.float32)]
    m = index_map([square, whole], (8, 8), (8, 8))  # the small square on top of the whole image
    assert m.dtype == np.int16 and (m[2:6, 2:6] == 1).all() and (m == 2).sum() == 64 - 16
    keep, boxes = boxes_from_index_map(m, 2)
    assert keep.tolist() == [0, 1] and boxes.tolist() == [[2, 2, 6, 6], [0, 0, 8, 8]]
    m[m == 1] = 0  # instance 0 gone: the rest renumbered
    keep, _ = boxes_from_index_map(m, 2)
    assert keep.tolist() == [1] and set(np.unique(relabel(m, keep)).tolist()) == {0, 1}


def test_mask_to_polygons_round_trips_a_mask():
    mask = np.zeros((40, 40), np.uint8)
    cv2.circle(mask, (20, 18), 11, 1, -1)
    back = index_map([[p / 40 for p in mask_to_polygons(mask)]], (40, 40), (40, 40)) > 0
    assert (back == (mask > 0)).all()


def test_yolo_seg_rows_are_read_and_bad_ones_reported(tmp_path: Path):
    f = tmp_path / "a.txt"
    f.write_text("1 0.1 0.1 0.5 0.1 0.3 0.6\n"  # good triangle
                 "0 0.2 0.2 0.4 0.2 0.1\n"  # six columns: neither a box nor a polygon
                 "0 0.2 0.2 nan 0.2 0.3 0.3\n"  # NaN
                 "2 0.2 0.2 1.3 0.2 0.3 0.3\n"  # out of range
                 "1 0.5 0.5 0.2 0.2\n")  # a box: no polygon for the segment task
    parsed = parse_label_file(f, nc=3, segments=True)
    assert parsed.cls.tolist() == [1] and len(parsed.segments) == 1
    np.testing.assert_allclose(parsed.bboxes[0], [0.3, 0.35, 0.4, 0.5], atol=1e-6)  # the polygon's extent
    assert parsed.problems == [("6 columns, expected 5 (box) or 7 or more (polygon)", 2), ("non-finite value", 3),
                               ("polygon outside the image", 4), ("box without a polygon (segmentation data)", 5)]
    detect = parse_label_file(f, nc=3)  # a detector reads polygons as their boxes, and boxes as boxes
    assert detect.cls.tolist() == [1, 1] and detect.segments is None


def _write_yolo_seg(root: Path, n: int = 3) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for i in range(n):
        cv2.imwrite(str(root / "images" / f"{i}.png"), np.full((40, 60, 3), 90, np.uint8))
        (root / "labels" / f"{i}.txt").write_text(f"{i % 2} 0.1 0.1 0.6 0.1 0.6 0.8\n0 0.7 0.2 0.9 0.2 0.9 0.9 0.7 0.9\n")
    return root / "images"


def test_yolo_seg_records_survive_the_label_cache(tmp_path: Path):
    images = _write_yolo_seg(tmp_path)
    first, _ = load_yolo_records(images, nc=2, segments=True)
    again, _ = load_yolo_records(images, nc=2, segments=True)  # from the cache
    assert len(again) == 3 and all(len(r["segments"]) == 2 for r in again)
    for a, b in zip(first, again):
        for pa, pb in zip(a["segments"], b["segments"]):
            np.testing.assert_array_equal(pa[0], pb[0])
    boxes_only, _ = load_yolo_records(images, nc=2)  # detect: another cache key, no segments
    assert all("segments" not in r for r in boxes_only)


def test_coco_polygons_and_rle_are_read(tmp_path: Path):
    from pycocotools import mask as mask_utils

    (tmp_path / "img").mkdir()
    cv2.imwrite(str(tmp_path / "img" / "a.png"), np.zeros((50, 80, 3), np.uint8))
    blob = np.zeros((50, 80), np.uint8)
    blob[10:30, 40:70] = 1
    rle = mask_utils.encode(np.asfortranarray(blob))
    anns = [
        {"id": 1, "image_id": 1, "category_id": 4, "bbox": [5, 5, 20, 30], "iscrowd": 0,
         "segmentation": [[5, 5, 25, 5, 25, 35, 5, 35], [1, 1]]},  # a square plus a broken part (dropped)
        {"id": 2, "image_id": 1, "category_id": 4, "bbox": [40, 10, 30, 20], "iscrowd": 0,
         "segmentation": {"size": [50, 80], "counts": rle["counts"].decode()}},
        {"id": 3, "image_id": 1, "category_id": 4, "bbox": [1, 1, 3, 3], "iscrowd": 0},  # no segmentation
        {"id": 4, "image_id": 1, "category_id": 4, "bbox": [1, 1, 3, 3], "iscrowd": 0,
         "segmentation": {"size": [10, 10], "counts": "x"}},  # RLE of another size
    ]
    path = tmp_path / "ann.json"
    path.write_text(json.dumps({"images": [{"id": 1, "file_name": "a.png", "width": 80, "height": 50}],
                                "annotations": anns, "categories": [{"id": 4, "name": "thing"}]}))
    records, _, report = load_coco_records(tmp_path / "img", path, nc=1, segments=True)
    (r,) = records
    assert len(r["segments"]) == 2 and len(r["cls"]) == 2
    masks = index_map(r["segments"], (50, 80), (80, 50))
    assert (masks == 1).sum() == 20 * 30 and ((masks == 2) == blob.astype(bool)).all()  # the RLE, pixel for pixel
    assert {"annotation without segmentation", "RLE size differs from the image"} <= set(report.bad_rows)
    assert coco_segmentation([[1, 2, 3]], 80, 50) == (None, "no valid segmentation polygon")


def _coloured_dataset(tmp_path: Path, n: int = 6) -> tuple[list[dict], dict[int, tuple[int, int, int]]]:
    """Images whose objects are filled with their class colour on black: a mask pixel must show its colour."""
    colours = {0: (0, 0, 255), 1: (0, 255, 0), 2: (255, 0, 0)}
    rng = np.random.default_rng(0)
    records = []
    for i in range(n):
        h, w = (120, 90) if i % 2 else (80, 130)
        img = np.zeros((h, w, 3), np.uint8)
        cls, segs = [], []
        for k in range(3):
            cx, cy, r = rng.uniform(25, w - 25), rng.uniform(25, h - 25), rng.uniform(10, 20)
            t = np.linspace(0, 2 * np.pi, 9)[:-1] + rng.uniform(0, 1)
            pts = np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], 1)
            segs.append([(pts / (w, h)).astype(np.float32)])
            cls.append(k)
        for k in sorted(range(3), key=lambda k: -cv2.contourArea((segs[k][0] * (w, h)).astype(np.float32))):
            mask = index_map([segs[k]], (h, w), (w, h)) > 0  # paint exactly the rasterized instance
            img[mask] = colours[cls[k]]
        f = tmp_path / f"{i}.png"
        cv2.imwrite(str(f), img)
        boxes = np.array([[*(p[0].min(0) + p[0].max(0)) / 2, *(p[0].max(0) - p[0].min(0))] for p in segs], np.float32)
        records.append({"im_file": str(f), "shape": (h, w), "cls": np.array(cls), "bboxes": boxes, "segments": segs})
    return records, colours


@pytest.mark.parametrize("hyp", [
    {"mosaic": 1.0, "degrees": 25.0, "shear": 5.0, "fliplr": 1.0, "flipud": 0.5, "hsv_h": 0, "hsv_s": 0, "hsv_v": 0},
    {"mosaic": 0.0, "degrees": 10.0, "fliplr": 0.5, "mixup": 1.0, "hsv_h": 0, "hsv_s": 0, "hsv_v": 0},
    {"mosaic": 0.5, "degrees": 10.0, "copy_paste": 1.0, "hsv_h": 0, "hsv_s": 0, "hsv_v": 0},
])
def test_masks_and_boxes_follow_mosaic_affine_and_flips(tmp_path: Path, hyp):
    records, colours = _coloured_dataset(tmp_path)
    ds = SegmentationDataset(records, 96, augment=True, hyp=hyp)
    seen = 0
    for epoch in range(2):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            s = ds[i]
            img = s["img"].numpy().transpose(1, 2, 0)[:, :, ::-1]  # back to BGR
            m = s["masks"].numpy()
            boxes = s["bboxes"].numpy() * 96
            assert m.max() == len(s["cls"])  # every row has pixels, ids 1..n
            for k, c in enumerate(s["cls"].view(-1).long().tolist()):
                ys, xs = np.nonzero(m == k + 1)
                cx, cy, bw, bh = boxes[k]
                np.testing.assert_allclose([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1],
                                           [cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], atol=1e-3)
                # inside the mask (one pixel in from its edge, where resampling blends with the black background)
                # the image shows the instance's own colour: a mask off by a pixel or two would fail this
                inner = cv2.erode((m == k + 1).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
                if inner.sum() < 5:
                    continue
                pix = img[inner].astype(int)
                if hyp.get("mixup"):  # blended about half and half with another image: its channel at ~half strength
                    assert (pix[:, int(np.argmax(colours[c]))] > 0.3 * 255).mean() > 0.9
                else:
                    assert (np.abs(pix - colours[c]).max(1) < 60).mean() > 0.9
                seen += 1
    assert seen > 20


def test_copy_paste_adds_objects_on_top(tmp_path: Path):
    records, _ = _coloured_dataset(tmp_path)
    plain = SegmentationDataset(records, 96, augment=True, hyp={"mosaic": 0.0, "copy_paste": 0.0})
    pasted = SegmentationDataset(records, 96, augment=True, hyp={"mosaic": 0.0, "copy_paste": 1.0})
    more = sum(len(pasted[i]["cls"]) - len(plain[i]["cls"]) for i in range(len(records)))
    assert more > 0  # about half of another sample's objects are added per sample


def test_validation_samples_and_collate(tmp_path: Path):
    records, _ = _coloured_dataset(tmp_path, n=3)
    ds = SegmentationDataset(records, 96, augment=False)
    batch = collate_detection([ds[i] for i in range(3)])
    assert batch["masks"].shape == (3, 96, 96) and batch["masks"].dtype == torch.int16
    for b in range(3):  # ids in the map line up with the image's rows of the flat targets
        n = int((batch["batch_idx"] == b).sum())
        assert int(batch["masks"][b].max()) == n
