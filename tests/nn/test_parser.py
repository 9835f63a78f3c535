"""Parser errors name the file and the row; YAML strings are never executed."""

import json
import re
import time
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


def anchor_bomb(levels: int = 9, width: int = 9) -> str:
    """A flow list of ``levels`` anchors, each ``width`` aliases of the previous: width**levels leaves."""
    items = [f"&a0 [{', '.join(['16'] * width)}]"]
    items += [f"&a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, levels)]
    return f"[{', '.join(items)}]"


def test_anchor_bomb_in_args_is_refused_fast(tmp_path):
    path = write(tmp_path, GOOD.replace("[16, 3, 2]", anchor_bomb()))
    t = time.perf_counter()
    with pytest.raises(ModelConfigError, match=r"m\.yaml: expands to more than 100,000 nodes"):
        build_model(path)
    assert time.perf_counter() - t < 1.0
    with pytest.raises(ModelConfigError, match=r"<ckpt>: expands to more than"):  # YAML text from a checkpoint
        ModelGraph(path.read_text(), source="<ckpt>")


def test_non_utf8_model_yaml_names_the_file(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(("# caf\u00e9\n" + GOOD).encode("latin-1"))
    with pytest.raises(ModelConfigError, match=r"latin1\.yaml: not UTF-8 text"):
        build_model(path)


SCALED = "nc: 2\nscales:\n  n: {scale}\n" + GOOD.split("\n", 1)[1].replace("[-1, 1, Conv, [32", "[-1, 3, C2f, [32")


@pytest.mark.parametrize("scale", ["[.inf, 0.25, 1024]", "[0.33, .nan, 1024]", "[0.33, 0.25, .inf]", "[-1, 0.25, 1024]",
                                   "[0.33, 0, 1024]", "[0.33, 0.25, 0]", "[1e9, 0.25, 1024]", "[0.33, 1e9, 1024]",
                                   "[0.33, 0.25, 1e12]", "[a, 0.25, 1024]", "[true, 0.25, 1024]", "[0.33, 0.25]",
                                   "0.33"])
def test_bad_scales_name_the_file(tmp_path, scale):
    with pytest.raises(ModelConfigError, match=r"m\.yaml: scale 'n' must be \[depth, width, max_channels\]"):
        build_model(write(tmp_path, SCALED.format(scale=scale)), scale="n")


@pytest.mark.parametrize("text, match", [
    ("depth_multiple: .inf\n" + GOOD, r"`depth_multiple` must be a number in \(0, 16\]"),
    ("width_multiple: -0.5\n" + GOOD, r"`width_multiple` must be a number"),
    (GOOD.replace("nc: 2", "nc: 1000000000"), r"`nc` must be a positive integer \(at most 100,000\)"),
    (GOOD.replace("[-1, 1, Conv, [32, 3, 2]]", "[-1, 100000000, C2f, [32]]"), r"layer 1 .*repeats .*at most 100"),
    ("depth_multiple: 16\n" + GOOD.replace("[-1, 1, Conv, [32, 3, 2]]", "[-1, 50, C2f, [32]]"),
     r"layer 1 .*depth multiple 16 = 800, more than 100"),
])
def test_size_bounds_name_the_file(tmp_path, text, match):
    with pytest.raises(ModelConfigError, match=match):
        build_model(write(tmp_path, text))


DETECT = """nc: 2
backbone:
  - [-1, 1, Conv, [16, 3, 2]]
  - [-1, 1, Conv, [32, 3, 2]]
  - [-1, 1, Conv, [64, 3, 2]]
head:
  - [{src}, 1, {head}, {args}]
"""


@pytest.mark.parametrize("src", ["-1", "[2]", "1"])
@pytest.mark.parametrize("head, args", [("Detect", "[nc]"), ("FPN", "[32]")])
def test_list_input_module_fed_one_tensor(tmp_path, src, head, args):
    path = write(tmp_path, DETECT.format(src=src, head=head, args=args))
    with pytest.raises(ModelConfigError, match=rf"m\.yaml: layer 3 \(head row 0\): {head} reads a list of feature "
                                               rf"maps, but `from` {re.escape(src)} gives it one tensor"):
        build_model(path)


def test_list_input_modules_still_build_from_lists(tmp_path):
    assert build_model(write(tmp_path, DETECT.format(src="[1, 2]", head="Detect", args="[nc]"))).task == "detect"
    fpn = DETECT.format(src="[1, 2]", head="FPN", args="[32]") + "  - [-1, 1, RetinaHead, [nc, [32, 64]]]\n"
    assert build_model(write(tmp_path, fpn)).task == "detect"


def test_long_rows_are_cut_in_messages(tmp_path):
    row = "[-1, 1, Conv, [" + ", ".join(["'x'"] * 5000) + "]]"
    with pytest.raises(ModelConfigError) as e:
        build_model(write(tmp_path, GOOD.replace("[-1, 1, Conv, [32, 3, 2]]", row)))
    assert len(str(e.value)) < 400 and "\n" not in str(e.value)


def test_a_scale_letter_in_the_name_of_a_file_without_scales_is_just_its_name(tmp_path):
    path = tmp_path / "tinynet9m.yaml"  # looks like "tinynet9" at scale m
    path.write_text(GOOD)
    model = build_model(path)
    assert model.scale is None and model.nc == build_model(write(tmp_path, GOOD)).nc
    with pytest.raises(ModelConfigError, match="defines no `scales`"):  # an explicit scale still is an error
        build_model(path, scale="m")
