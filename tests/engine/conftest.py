"""Tiny detection datasets written by the tests (YOLO layout generated, COCO JSON hand-written)."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest


@pytest.fixture(scope="session")
def tiny_shapes_yaml(tmp_path_factory) -> Path:
    """A 16-train / 8-val synthetic shapes dataset (64 px images) in YOLO layout."""
    root = tmp_path_factory.mktemp("tiny_shapes")
    yaml_path = root / "tiny.yaml"
    yaml_path.write_text(
        "synthetic: shapes\npath: data\nsynthetic_args: {n_train: 16, n_val: 8, imgsz: 64, seed: 0}\n"
        "train: images/train\nval: images/val\nnames: [circle, square, triangle, star]\n"
    )
    return yaml_path


@pytest.fixture(scope="session")
def tiny_coco_yaml(tmp_path_factory) -> Path:
    """A COCO-format dataset (instances JSON + images) with non-contiguous category ids 3 and 7."""
    root = tmp_path_factory.mktemp("tiny_coco")
    rng = np.random.default_rng(0)
    for split, n in (("train", 8), ("val", 4)):
        (root / split).mkdir()
        images, anns = [], []
        for i in range(n):
            img = np.full((64, 80, 3), 40, np.uint8)
            image_id = 100 + i
            for k in range(2):
                x, y, s = int(rng.integers(2, 40)), int(rng.integers(2, 30)), int(rng.integers(12, 24))
                cat = (3, 7)[k % 2]
                color = (0, 0, 255) if cat == 3 else (0, 255, 0)
                cv2.rectangle(img, (x, y), (x + s, y + s), color, -1)
                anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": cat, "bbox": [x, y, s, s],
                             "area": s * s, "iscrowd": 0})
            name = f"{image_id}.jpg"
            cv2.imwrite(str(root / split / name), img)
            images.append({"id": image_id, "file_name": name, "height": 64, "width": 80})
        cats = [{"id": 3, "name": "red"}, {"id": 7, "name": "green"}]
        (root / f"instances_{split}.json").write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    yaml_path = root / "coco_tiny.yaml"
    yaml_path.write_text(
        f"path: {root}\ntrain: {{images: train, annotations: instances_train.json}}\n"
        "val: {images: val, annotations: instances_val.json}\nnames: [red, green]\n"
    )
    return yaml_path
