"""Parser errors name the file and the row; YAML strings are never executed."""

import json
from pathlib import Path

import pytest

from mirrordet.nn import build_model
from mirrordet.nn.graph import ModelGraph
from mirrordet.utils.errors import ModelConfigError

GOOD = """nc: 2
backbone:
  - [-1, 1, Conv, [16, 3, 2]]
  - [-1, 1, Conv, [32, 3, 2]]
head:
  - [-1, 1, Classify, [nc]]
"""


def write(tmp_path: Path, text: str, name: str = "m.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_good_file_builds(tmp_path):
    model = build_model(write(tmp_path, GOOD))
    assert model.task == "classify" and model.nc == 2


@pytest.mark.parametrize(
    "text, match",
    [
        (GOOD.replace("Conv, [32", "Convv, [32"), r"m\.yaml: layer 1 \(backbone row 1\): unknown module 'Convv'; did you mean Conv"),
        (GOOD.replace("[-1, 1, Conv, [32", "[5, 1, Conv, [32"), r"layer 1 .*`from` 5 is out of range"),
        (GOOD.replace("[-1, 1, Conv, [32", "[-3, 1, Conv, [32"), r"layer 1 .*out of range"),
        (GOOD.replace("[16, 3, 2]", "[16, 3, 2, 1, 1, 1, True, 9]"), r"layer 0 .*Conv takes 1..7 arguments"),
        (GOOD.replace("[16, 3, 2]", "['16', 3, 2]"), r"layer 0 .*argument 0 \(c2\) must be int"),
        (GOOD.replace("[16, 3, 2]", "[]"), r"layer 0 .*Conv takes 1..7 arguments"),
        (GOOD.replace("backbone:", "bones:"), r"unknown top-level key"),
        ("nc: 2\nbackbone: []\n", r"missing `head`"),
        ("nc: 2\nhead: []\n", r"missing `backbone`"),
        (GOOD.replace("nc: 2", "nc: 0"), r"`nc` must be a positive integer"),
        (GOOD.replace("[-1, 1, Conv, [32, 3, 2]]", "[-1, 1, Conv]"), r"layer 1 .*a row must be"),
        (GOOD.replace("[-1, 1, Conv, [32", "[-1, 0, Conv, [32"), r"repeats must be a positive integer"),
        ("- just a list\n", r"must be a mapping"),
        ("nc: [unclosed\n", r"not valid YAML"),
        ("zero_init_residual: yes please\n" + GOOD, r"`zero_init_residual` must be true or false"),
    ],
)
def test_bad_files_name_file_and_row(tmp_path, text, match):
    with pytest.raises(ModelConfigError, match=match):
        build_model(write(tmp_path, text))


def test_scale_errors(tmp_path):
    text = "nc: 2\nscales:\n  n: [0.33, 0.25, 1024]\n" + GOOD.split("\n", 1)[1]
    with pytest.raises(ModelConfigError, match="scale 'x' is not defined"):
        build_model(write(tmp_path, text), scale="x")
    with pytest.raises(ModelConfigError, match="defines no `scales`"):
        build_model(write(tmp_path, GOOD), scale="n")


def test_scale_from_file_name():
    assert build_model("yolov8s.yaml").scale == "s"
    assert build_model("yolov8n-mirror.yaml").scale == "n"
    with pytest.raises(ModelConfigError, match="not found"):
        build_model("yolov9000z.yaml")


PAYLOADS = [
    "__import__('os').system('touch {m}')",
    "eval(\"open('{m}', 'w')\")",
    "exec(\"open('{m}', 'w').write('x')\")",
    "open('{m}', 'w')",
    "!!python/object/apply:os.system ['touch {m}']",
]


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("where", ["module", "arg", "nc", "from", "key", "scale"])
def test_code_in_yaml_never_runs(tmp_path, payload, where):
    marker = tmp_path / "PWNED"
    code = payload.format(m=marker)
    tagged = code.startswith("!!")  # a YAML tag: safe_load refuses it before any row is read
    quoted = code if tagged else json.dumps(code)
    rows = {
        "module": f"  - [-1, 1, {quoted}, [16]]",
        "arg": f"  - [-1, 1, Conv, [{quoted}, 3, 2]]",
        "from": f"  - [{quoted}, 1, Conv, [16, 3, 2]]",
    }
    row = rows.get(where, "  - [-1, 1, Conv, [16, 3, 2]]")
    top = {"nc": f"nc: {quoted}\n", "key": f"nc: 2\n{quoted}: 1\n",
           "scale": f"nc: 2\nscales:\n  n: [{quoted}, 0.25, 1024]\n"}.get(where, "nc: 2\n")
    text = f"{top}backbone:\n{row}\nhead:\n  - [-1, 1, Classify, [nc]]\n"
    with pytest.raises(ModelConfigError) as info:
        ModelGraph(text, source="evil.yaml", scale="n" if where == "scale" else None)
    assert "evil.yaml" in str(info.value)
    if where in ("module", "arg", "from") and not tagged:
        assert "layer 0" in str(info.value)
    assert not marker.exists()


def test_package_function_names_are_not_modules(tmp_path):
    for name in ("build_model", "parse_model", "load_model_yaml", "os.system", "print"):
        with pytest.raises(ModelConfigError, match="unknown module"):
            ModelGraph(f"nc: 2\nbackbone:\n  - [-1, 1, {name}, [16]]\nhead: []\n", source="x.yaml")
