import pytest

from mirrordet.cfg import get_cfg, load_defaults
from mirrordet.utils.errors import ConfigError


def test_defaults_are_complete_and_typed():
    d = load_defaults()
    for key in ("epochs", "batch", "imgsz", "lr0", "box", "cls", "dfl", "mosaic", "close_mosaic", "scale", "aug_scale"):
        assert key in d
    assert get_cfg()["model"] == "yolov8n.yaml"


def test_overrides_apply_and_int_to_float():
    c = get_cfg({"epochs": 3, "lr0": 1})
    assert c["epochs"] == 3 and c["lr0"] == 1.0 and isinstance(c["lr0"], float)


@pytest.mark.parametrize(
    "override, match",
    [({"epoch": 3}, "did you mean 'epochs'"), ({"epochs": "ten"}, "must be int"), ({"hsv_h": 2.0}, r"within \[0, 1\]"),
     ({"amp": 1}, "must be bool"), ({"optimizer": "sgd"}, "choose one of"), ({"batch": 0}, "> 0"),
     ({"epochs": None}, "cannot be null"), ({"lr0": float("nan")}, "finite"), ({"classes": [1, -2]}, "class ind"),
     ({"epochs": True}, "not a boolean"), ({"scale": "q"}, "choose one of")],
)
def test_bad_values_are_refused(override, match):
    with pytest.raises(ConfigError, match=match):
        get_cfg(override)
