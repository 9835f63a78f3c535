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


def test_val_sizes_images_by_the_models_resize_rule(tiny_shapes_yaml, tmp_path, monkeypatch):
    from mirrordet.data.dataset import DetectionDataset
    from mirrordet.engine.modes import validate_model
    from mirrordet.nn.graph import ModelGraph

    body = ("nc: 4\nbackbone:\n  - [-1, 1, Conv, [8, 3, 2]]\n  - [-1, 1, Conv, [16, 3, 2]]\n"
            "  - [-1, 1, Conv, [16, 3, 2]]\n"
            "head:\n  - [[1, 2], 1, Detect, [nc]]\n")
    seen = []
    original = DetectionDataset.__getitem__

    def spy(self, i):
        out = original(self, i)
        seen.append((self.pad_only, out["resized_shape"], out["img"].shape[-2:]))
        return out
    monkeypatch.setattr(DetectionDataset, "__getitem__", spy)
    settings = {"data": str(tiny_shapes_yaml), "imgsz": 32, "batch": 4, "workers": 0, "project": str(tmp_path),
                "name": "v", "plots": False}
    metrics = validate_model(ModelGraph("resize: {min_size: 96, max_size: 160}\n" + body), settings)
    assert "metrics/mAP50-95" in metrics and len(seen) == 8
    assert all(pad_only and shape == (96, 96) == tuple(hw) for pad_only, shape, hw in seen)  # 64 px squares -> 96
    seen.clear()
    validate_model(ModelGraph(body), {**settings, "name": "plain"})
    assert all(not pad_only and shape == (32, 32) for pad_only, shape, _ in seen)  # no rule: imgsz
