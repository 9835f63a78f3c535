"""The mode layer: per-mode defaults, the checkpoint's imgsz, the user's settings, in that order;
and the one way a mode opens the network its settings name."""

from pathlib import Path

from mirrordet.engine.modes import load_network
from mirrordet.engine.setup import mode_settings

ASSET = Path(__file__).parent / "assets" / "yolo-tiny-f28bf73-last.pt"


def test_mode_settings_precedence():
    assert mode_settings("train", {})["batch"] == 16  # cfg/default.yaml
    assert mode_settings("predict", {})["batch"] == 1  # the mode's default
    assert mode_settings("predict", {"batch": 4})["batch"] == 4  # the user's setting wins
    assert mode_settings("predict", {}, train_args={"imgsz": 96})["imgsz"] == 96  # the checkpoint's imgsz
    assert mode_settings("predict", {"imgsz": 64}, train_args={"imgsz": 96})["imgsz"] == 64
    assert mode_settings("predict", {})["save_json"] is False  # from Python
    assert mode_settings("predict", {}, cli=True)["save_json"] is True  # from the CLI: the default


def test_load_network_from_a_yaml_and_from_a_checkpoint():
    net, ckpt, name = load_network({"model": "yolov8n.yaml", "nc": 3})
    assert ckpt is None and name == "yolov8n.yaml" and net.nc == 3 and net.scale == "n"
    net, ckpt, name = load_network({"model": str(ASSET)})
    assert ckpt is not None and ckpt.epoch == 2 and net.nc == 4 and name == str(ASSET)
