"""Small YAML/CLI inputs that used to hang, blow up or end in a traceback: each is exit code 2 and one
stderr line that names the file (or the setting) and what is wrong (``one_line_error`` in conftest)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import pytest

import mirrordet.engine.compare  # noqa: F401  (imported here so the bomb timings do not include imports)
import mirrordet.engine.trainer  # noqa: F401
import mirrordet.model  # noqa: F401
from mirrordet.cli import parse_overrides
from mirrordet.utils.errors import ConfigError
from mirrordet.utils.files import bundled_dir


def anchor_bomb(levels: int = 9, width: int = 9) -> str:
    """A flow list of ``levels`` anchors, each ``width`` aliases of the previous: width**levels leaves."""
    items = [f"&a0 [{', '.join(['16'] * width)}]"]
    items += [f"&a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, levels)]
    return f"[{', '.join(items)}]"


YOLO = (bundled_dir("models") / "yolov8.yaml").read_text(encoding="utf-8")
SMALL = ("nc: 2\nbackbone:\n  - [-1, 1, Conv, [16, 3, 2]]\n  - [-1, 1, Conv, [32, 3, 2]]\n"
         "head:\n  - [-1, 1, Classify, [nc]]\n")
N_SCALE = "n: [0.33, 0.25, 1024]"


def model_file(text: str | bytes, name: str = "m.yaml") -> Callable[[Path], str]:
    def make(tmp: Path) -> str:
        p = tmp / name
        p.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
        return str(p)
    return make


def data_file(tail: str | bytes, name: str = "d.yaml") -> Callable[[Path], str]:
    def make(tmp: Path) -> str:
        for split in ("train", "val"):
            (tmp / "images" / split).mkdir(parents=True, exist_ok=True)
        head = f"path: {tmp}\ntrain: images/train\nval: images/val\n".encode("utf-8")
        p = tmp / name
        p.write_bytes(head + (tail if isinstance(tail, bytes) else tail.encode("utf-8")))
        return str(p)
    return make


def bomb_run(tmp: Path) -> str:
    """A run folder whose args.yaml is an anchor bomb (compare runs= reads it)."""
    run = tmp / "run"
    (run / "weights").mkdir(parents=True)
    for name in ("results.csv", "metrics.json", "weights/best.pt"):
        (run / name).write_text("")
    (run / "args.yaml").write_text(f"imgsz: 640\nsave_dir: {anchor_bomb()}\n")
    return f"{run},{run}"


# (id, argv with {m}/{d}/{r} filled in by the makers, makers, expected substring, an anchor bomb?)
Maker = Callable[[Path], str]
CASES: list[tuple[str, list[str], dict[str, Maker], str, bool]] = [
    ("bomb-dataset-names", ["train", "data={d}"], {"d": data_file(f"names: {anchor_bomb()}\n")},
     "d.yaml: expands to more than 100,000 nodes", True),
    ("bomb-model-args", ["info", "model={m}"], {"m": model_file(SMALL.replace("[16, 3, 2]", anchor_bomb()))},
     "m.yaml: expands to more than 100,000 nodes", True),
    ("bomb-cli-value", ["info", f"save={anchor_bomb()}"], {}, "'save=': expands to more than 100,000 nodes", True),
    ("bomb-compare-args-yaml", ["compare", "runs={r}"], {"r": bomb_run}, "args.yaml: expands to more than", True),
    ("recursive-alias-cli", ["info", "classes=&a [1, *a]"], {}, "'classes=': contains a recursive alias", False),
    ("deep-nesting-cli", ["info", "classes=" + "[" * 5000 + "]" * 5000], {}, "nested too deeply", False),
    ("save-list", ["info", "save=[1,2]"], {}, "'save=[1, 2]' must be bool", False),
    ("imgsz-huge-info", ["info", "imgsz=100000"], {}, "'imgsz=100000' is larger than the maximum 8192", False),
    ("imgsz-huge-val", ["val", "imgsz=100000"], {}, "larger than the maximum 8192", False),
    ("imgsz-huge-predict", ["predict", "imgsz=100000", "source=x.jpg"], {}, "larger than the maximum 8192", False),
    ("imgsz-huge-train", ["train", "imgsz=100000", "data={d}"], {"d": data_file("names: [a]\n")},
     "larger than the maximum 8192", False),
    ("imgsz-huge-dataset-defaults", ["train", "data={d}"], {"d": data_file("names: [a]\ndefaults: {imgsz: 100000}\n")},
     "`defaults:`", False),
    ("non-utf8-model-yaml", ["info", "model={m}"], {"m": model_file(("# caf\u00e9\n" + SMALL).encode("latin-1"))},
     "m.yaml: not UTF-8 text", False),
    ("non-utf8-dataset-yaml", ["train", "data={d}"],
     {"d": data_file("names: [caf\u00e9]\n".encode("latin-1"))},
     "d.yaml: not UTF-8 text", False),
    ("scales-inf", ["info", "model={m}"], {"m": model_file(YOLO.replace(N_SCALE, "n: [.inf, 0.25, 1024]"))},
     "m.yaml: scale 'n' must be [depth, width, max_channels]", False),
    ("scales-nan-max-channels", ["info", "model={m}"],
     {"m": model_file(YOLO.replace(N_SCALE, "n: [0.33, 0.25, .nan]"))}, "scale 'n' must be", False),
    ("scales-negative", ["info", "model={m}"],
     {"m": model_file(YOLO.replace(N_SCALE, "n: [0.33, -0.25, 1024]"))}, "scale 'n' must be", False),
    ("depth-multiple-inf", ["info", "model={m}"], {"m": model_file("depth_multiple: .inf\n" + SMALL)},
     "`depth_multiple` must be a number", False),
    ("detect-fed-one-tensor", ["info", "model={m}"],
     {"m": model_file(YOLO.replace("[[15, 18, 21], 1, Detect", "[-1, 1, Detect"))},
     "m.yaml: layer 22 (head row 12): detect reads a list of feature maps", False),
    ("repeats-huge", ["info", "model={m}"],
     {"m": model_file(SMALL.replace("[-1, 1, Conv, [32", "[-1, 100000000, Conv, [32"))},
     "repeats must be a positive integer (at most 100)", False),
    ("nc-huge-cli", ["info", "model={m}", "nc=1000000000"], {"m": model_file(SMALL)},
     "`nc` must be a positive integer", False),
    ("nc-huge-dataset", ["train", "data={d}"], {"d": data_file("nc: 1000000000\n")},
     "`nc` must be a positive integer", False),
    ("model-yaml-error-is-one-line", ["info", "model={m}"], {"m": model_file("nc: [unclosed\n" + SMALL)},
     "m.yaml: not valid YAML", False),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_yaml_and_cli_inputs_are_one_line_errors(case, one_line_error, tmp_path, monkeypatch):
    _, argv, makers, contains, bomb = case
    monkeypatch.chdir(tmp_path)  # nothing may be written next to the tests
    paths = {k: make(tmp_path) for k, make in makers.items()}
    argv = [tok.format(**paths) for tok in argv]  # no token holds a literal brace
    t = time.perf_counter()
    one_line_error(argv, contains=contains)
    if bomb:  # the modes' own imports are done at the top of this file, so this times the refusal
        assert time.perf_counter() - t < 1.0
    assert not (tmp_path / "runs").exists()


def test_parse_overrides_refuses_an_anchor_bomb_fast():
    t = time.perf_counter()
    with pytest.raises(ConfigError, match="'save=': expands to more than 100,000 nodes"):
        parse_overrides([f"save={anchor_bomb()}"])
    assert time.perf_counter() - t < 1.0
    assert parse_overrides(["name=a: b", "classes=[1, 2]"]) == {"name": "a: b", "classes": [1, 2]}
