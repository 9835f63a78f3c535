"""Commands typed from Ultralytics habit: task words, data=DIR, missing weights, untrained models, AutoBatch."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from mirrordet.cli import main
from mirrordet.data.dataset_yaml import load_dataset_yaml


def _image_folder(root, side: int = 48, per_class: int = 3):
    for split in ("train", "val"):
        for name in ("cat", "ant", "bee"):
            d = root / split / name
            d.mkdir(parents=True)
            for i in range(per_class):
                cv2.imwrite(str(d / f"{i}.png"), np.full((side, side, 3), 40 * i, np.uint8))
    return root


def test_task_word_first(capfd, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["detect", "info"]) == 0
    assert "yolov8n summary" in capfd.readouterr().err
    assert main(["classify", "info"]) == 0  # a task word implies its default model
    assert "yolov8n-cls summary" in capfd.readouterr().err
    assert main(["segment", "info"]) == 0
    assert "yolov8n-seg summary" in capfd.readouterr().err


@pytest.mark.parametrize("argv,contains", [
    (["detect"], "needs a mode after the task"),
    (["predict", "model=yolov8n.pt", "source=x.jpg"], "never downloads weights"),
    (["val"], "needs the trained weights to validate: pass model=path/to/best.pt"),
    (["train", "batch=-1"], "(AutoBatch) is not available"),
    (["train", "freeze=neck"], "must be a number of layers (>= 0) or 'backbone'"),
])
def test_habits_get_one_clear_line(argv, contains, one_line_error, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    line = one_line_error(argv, contains=contains)
    if argv[0] == "predict":
        assert str(tmp_path / "yolov8n.pt") in line  # says where it looked


def test_typo_suggests_only_close_keys(one_line_error):
    assert "did you mean 'epochs'?" in one_line_error(["train", "epoch=3"])
    assert "did you mean 'imgsz'?" in one_line_error(["train", "imgsize=3"])


def test_predict_with_a_yaml_warns_that_the_model_is_untrained(tmp_path, capfd):
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((64, 64, 3), np.uint8))
    assert main(["predict", "model=yolov8n.yaml", f"source={tmp_path / 'a.png'}", f"project={tmp_path}",
                 "imgsz=64", "save=False"]) == 0
    assert "randomly initialized network" in capfd.readouterr().err


def test_data_dir_is_an_image_folder_with_suited_imgsz(tmp_path):
    d = load_dataset_yaml(_image_folder(tmp_path / "pets", side=48))
    assert d["task"] == "classify" and d["names"] == {0: "ant", 1: "bee", 2: "cat"}  # sorted, as ImageFolder
    assert d["train"] == (tmp_path / "pets" / "train").resolve() and d["defaults"] == {"imgsz": 64}


def test_data_name_prefers_the_folder_over_a_sibling_yaml(tmp_path, monkeypatch, capfd):
    monkeypatch.chdir(tmp_path)
    _image_folder(tmp_path / "pets")
    (tmp_path / "pets.yaml").write_text("path: elsewhere\ntrain: a\nval: b\nnames: [x]\n")
    d = load_dataset_yaml("pets")
    assert d["task"] == "classify" and d["nc"] == 3
    assert "(not pets.yaml)" in capfd.readouterr().err


def test_a_folder_that_is_not_an_image_folder_is_explained(tmp_path):
    (tmp_path / "det" / "images").mkdir(parents=True)
    from mirrordet.utils.errors import DatasetError

    with pytest.raises(DatasetError, match="not a classification image folder"):
        load_dataset_yaml(tmp_path / "det")


def test_yaml_without_task_over_class_folders_is_classification(tmp_path, capfd):
    _image_folder(tmp_path / "pets")
    (tmp_path / "pets.yaml").write_text(f"path: {tmp_path / 'pets'}\ntrain: train\nval: val\nnames: [ant, bee, cat]\n"
                                        "download: https://example.invalid/pets.zip\n")
    d = load_dataset_yaml(tmp_path / "pets.yaml")
    assert d["task"] == "classify"
    assert "`download` entry is ignored" in capfd.readouterr().err
