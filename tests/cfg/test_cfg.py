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


def test_every_null_default_has_a_declared_type():
    from mirrordet.cfg import MIXED_TYPES, OPTIONAL_TYPES

    nulls = [k for k, v in load_defaults().items() if v is None]
    assert "save" in nulls
    assert not [k for k in nulls if k not in OPTIONAL_TYPES and k not in MIXED_TYPES]


@pytest.mark.parametrize("override, match", [
    ({"save": [1, 2]}, r"'save=\[1, 2\]' must be bool"), ({"save": "yes"}, "must be bool"),
    ({"save": 1}, "must be bool"),
    ({"project": ["a"]}, "must be str"), ({"time": "1h"}, "must be int or float"),
])
def test_null_default_settings_are_type_checked(override, match):
    with pytest.raises(ConfigError, match=match):
        get_cfg(override)
    assert get_cfg({"save": True})["save"] is True and get_cfg({"save": None})["save"] is None


def test_imgsz_has_a_documented_upper_bound():
    from mirrordet.cfg import MAX_IMGSZ, _default_text

    assert f"at most {MAX_IMGSZ}" in next(ln for ln in _default_text().splitlines() if ln.startswith("imgsz:"))
    assert get_cfg({"imgsz": MAX_IMGSZ})["imgsz"] == MAX_IMGSZ
    for bad in (MAX_IMGSZ + 1, 100000, 10 ** 30):
        with pytest.raises(ConfigError, match=f"larger than the maximum {MAX_IMGSZ}"):
            get_cfg({"imgsz": bad})
    with pytest.raises(ConfigError, match="must be int"):
        get_cfg({"imgsz": [640, 640]})


def test_long_values_are_cut_in_messages():
    with pytest.raises(ConfigError) as e:
        get_cfg({"save": list(range(100_000))})
    assert len(str(e.value)) < 200
