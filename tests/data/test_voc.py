"""Pascal VOC read natively: a tiny VOCdevkit written by the test, bad XML reported and skipped, difficult
objects as ignore regions, and validation that prints and stores the VOC metric."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from mirrordet.data.dataset import build_detection_dataset
from mirrordet.data.dataset_yaml import load_dataset_yaml

NAMES = ["cat", "dog"]


def _xml(name: str, w: int, h: int, objects: list[tuple[str, int, tuple[int, int, int, int]]]) -> str:
    objs = "".join(f"<object><name>{n}</name><pose>Unspecified</pose><truncated>0</truncated>"
                   f"<difficult>{d}</difficult><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin><xmax>{b[2]}</xmax>"
                   f"<ymax>{b[3]}</ymax></bndbox></object>" for n, d, b in objects)
    return (f"<annotation><folder>VOC2007</folder><filename>{name}.jpg</filename><size><width>{w}</width>"
            f"<height>{h}</height><depth>3</depth></size><segmented>0</segmented>{objs}</annotation>")


def write_voc(root, n: int = 6, w: int = 80, h: int = 64):
    """VOCdevkit/VOC2007 with n good images (image 1 has a difficult dog) plus three unusable annotations."""
    year = root / "VOCdevkit" / "VOC2007"
    for d in ("Annotations", "ImageSets/Main", "JPEGImages"):
        (year / d).mkdir(parents=True)
    ids = []
    for i in range(n):
        ident = f"{i:06d}"
        ids.append(ident)
        img = np.full((h, w, 3), 110, np.uint8)
        cv2.rectangle(img, (10, 10), (40, 40), (0, 0, 255), -1)
        cv2.imwrite(str(year / "JPEGImages" / f"{ident}.jpg"), img)
        objs = [("cat", 0, (11, 11, 40, 40))] + ([("dog", 1, (50, 20, 70, 50))] if i == 1 else [])
        (year / "Annotations" / f"{ident}.xml").write_text(_xml(ident, w, h, objs))
    bad = {"bad_entity": '<!DOCTYPE a [<!ENTITY x "y">]><annotation/>', "bad_class": _xml("x", w, h, [("cow", 0, (1, 1, 5, 5))]),
           "bad_box": _xml("x", w, h, [("cat", 0, (1, 1, 500, 5))])}
    for ident, text in bad.items():
        cv2.imwrite(str(year / "JPEGImages" / f"{ident}.jpg"), np.zeros((h, w, 3), np.uint8))
        (year / "Annotations" / f"{ident}.xml").write_text(text)
    (year / "ImageSets/Main/trainval.txt").write_text("\n".join(ids[: n // 2] + list(bad)) + "\n")
    (year / "ImageSets/Main/test.txt").write_text("\n".join(ids[n // 2:] + ids[1:2]) + "\n")
    yaml_path = root / "voc.yaml"
    yaml_path.write_text("path: VOCdevkit\nformat: voc\ntrain: VOC2007/ImageSets/Main/trainval.txt\n"
                         "val: VOC2007/ImageSets/Main/test.txt\nnames: [cat, dog]\n")
    return yaml_path


def test_voc_tree_is_read_with_bad_files_skipped(tmp_path, capfd):
    from mirrordet.utils.log import setup_logging

    setup_logging()
    data = load_dataset_yaml(write_voc(tmp_path))
    assert data["task"] == "detect" and "voc" in data["train"]
    ds = build_detection_dataset(data, "train", 64, augment=False)
    assert ds.source_format == "voc" and len(ds) == 3  # the three unusable annotations are skipped
    err = capfd.readouterr().err
    assert "3 rows skipped (unusable VOC annotation): bad_entity.xml: DOCTYPE" in err and "unknown class 'cow'" in err
    cls, boxes = ds.ground_truth(0)
    assert cls.tolist() == [0] and np.allclose(boxes, [[10, 10, 40, 40]], atol=1e-4)  # 0-based: xmin - 1
    hard = ds.crowd_boxes(1)
    assert np.allclose(hard, [[49, 19, 70, 50]], atol=1e-4) and ds.records[1]["difficult_cls"].tolist() == [1]
    assert ds.ground_truth(1)[0].tolist() == [0]  # the difficult dog is not a training target


def test_voc_format_key_requires_id_lists(tmp_path):
    from mirrordet.utils.errors import DatasetError

    yaml_path = write_voc(tmp_path)
    (tmp_path / "VOCdevkit" / "imgs").mkdir()
    yaml_path.write_text(yaml_path.read_text().replace("val: VOC2007/ImageSets/Main/test.txt", "val: imgs"))
    with pytest.raises(DatasetError, match="`format: voc` but `val` is not a VOC id list"):
        load_dataset_yaml(yaml_path)


def test_validation_stores_the_voc_metric(tmp_path):
    from mirrordet.engine.checkpoint import save_checkpoint
    from mirrordet.engine.checkpoint_format import Checkpoint
    from mirrordet.cli import main
    from mirrordet.nn.graph import build_model

    yaml_path = write_voc(tmp_path)
    net = build_model("yolov8n.yaml", nc=2)
    save_checkpoint(tmp_path / "m.pt", Checkpoint(model_yaml=net.yaml_text, model=net.state_dict(),
                                                  model_cfg={"scale": "n", "nc": 2}).to_dict())
    assert main(["val", f"model={tmp_path / 'm.pt'}", f"data={yaml_path}", "imgsz=64", f"project={tmp_path}",
                 "name=v", "plots=False"]) == 0
    metrics = json.loads((tmp_path / "v" / "metrics.json").read_text())
    assert set(metrics["voc"]) == {"map07", "map", "per_class"} and set(metrics["voc"]["per_class"]) == set(NAMES)
    assert 0.0 <= metrics["voc"]["map07"] <= 1.0
    gt = json.loads((tmp_path / "v" / "ground_truth.json").read_text())
    crowd = [a for a in gt["annotations"] if a["iscrowd"]]
    assert len(crowd) == 1 and crowd[0]["category_id"] == 1  # the difficult dog: an ignore region for COCO too


def test_shapes_voc_is_the_shapes_images_in_voc_layout(tmp_path):
    from mirrordet.data.synthetic import render_detection_image

    yaml_path = tmp_path / "s.yaml"
    yaml_path.write_text("synthetic: shapes-voc\npath: sv\nsynthetic_args: {n_train: 12, n_val: 3, imgsz: 96, seed: 0}\n"
                         "format: voc\ntrain: VOC2007/ImageSets/Main/train.txt\nval: VOC2007/ImageSets/Main/val.txt\n"
                         "names: [circle, square, triangle, star]\n")
    data = load_dataset_yaml(yaml_path)
    ds = build_detection_dataset(data, "train", 96, augment=False)
    assert ds.source_format == "voc" and len(ds) == 12
    n_hard = 0
    for i in range(12):
        _, objects = render_detection_image(np.random.default_rng([0, 0, i]), 96)  # the generator's own draws
        want = np.array([b for _, b in objects]).reshape(-1, 4)
        cls, boxes = ds.ground_truth(i)
        got = np.concatenate([boxes, ds.crowd_boxes(i)])
        assert len(got) == len(want) and np.allclose(np.sort(got, 0), np.sort(np.clip(want, 0, 96), 0), atol=1.0)
        n_hard += len(ds.crowd_boxes(i))
        assert all(max(b[2] - b[0], b[3] - b[1]) < 0.1 * 96 + 1 for b in ds.crowd_boxes(i))
    assert n_hard >= 1  # some objects are small enough to be difficult


def test_rect_validation_runs_on_non_square_images(tmp_path):
    from mirrordet.cli import main
    from mirrordet.engine.checkpoint import save_checkpoint
    from mirrordet.engine.checkpoint_format import Checkpoint
    from mirrordet.nn.graph import build_model

    yaml_path = write_voc(tmp_path)  # 80 x 64 images
    net = build_model("yolov8n.yaml", nc=2)
    save_checkpoint(tmp_path / "m.pt", Checkpoint(model_yaml=net.yaml_text, model=net.state_dict(),
                                                  model_cfg={"scale": "n", "nc": 2}).to_dict())
    for rect in (False, True):
        assert main(["val", f"model={tmp_path / 'm.pt'}", f"data={yaml_path}", "imgsz=64", "batch=2", f"rect={rect}",
                     f"project={tmp_path}", f"name=r{rect}"]) == 0
        assert (tmp_path / f"r{rect}" / "val_batch0.png").is_file()
