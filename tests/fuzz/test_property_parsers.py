"""Property tests: no input makes the label parser, the model-YAML parser or the CLI parser fail with
anything but the project's own error types (or succeed with a well-formed result)."""

import string

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mirrordet.cfg import get_cfg
from mirrordet.cli import parse_overrides
from mirrordet.data.labels import parse_label_file
from mirrordet.nn.graph import ModelGraph
from mirrordet.utils.errors import MirrordetError

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 100),
                    st.sampled_from(["nan", "inf", "-1e309", "1e-3", "0x10", "", "abc"]))


@FAST
@given(rows=st.lists(st.lists(numbers, max_size=7), max_size=8), junk=st.text(max_size=40))
def test_label_parser_only_keeps_valid_rows(tmp_path, rows, junk):
    path = tmp_path / "label.txt"
    path.write_text("\n".join(" ".join(map(str, r)) for r in rows) + "\n" + junk)
    parsed = parse_label_file(path, nc=3)
    cls, boxes = np.asarray(parsed.cls), np.asarray(parsed.bboxes).reshape(-1, 4)
    assert len(cls) == len(boxes)
    assert ((cls >= 0) & (cls < 3)).all()
    assert np.isfinite(boxes).all() and (boxes >= 0).all() and (boxes <= 1).all()
    assert (boxes[:, 2:] > 0).all()


yaml_scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 300), st.floats(allow_nan=False, width=32),
                         st.text(alphabet=string.ascii_letters + "._()' ", max_size=12))
rows = st.lists(st.one_of(yaml_scalars, st.lists(yaml_scalars, max_size=5)), max_size=5)
module_names = st.one_of(st.sampled_from(["Conv", "C2f", "CSPMirror", "SPPF", "Concat", "Detect", "Classify",
                                          "nn.Upsample", "CBAM", "ECA", "__import__", "eval", "os.system"]),
                         st.text(max_size=10))


@FAST
@given(nc=yaml_scalars, backbone=st.lists(st.tuples(yaml_scalars, yaml_scalars, module_names, rows), max_size=4),
       head=st.lists(st.tuples(yaml_scalars, yaml_scalars, module_names, rows), max_size=2))
def test_model_yaml_parser_fails_only_with_project_errors(nc, backbone, head):
    d = {"nc": nc, "backbone": [list(r) for r in backbone], "head": [list(r) for r in head]}
    text = yaml.safe_dump(d)
    try:
        model = ModelGraph(text, source="fuzz.yaml")
    except MirrordetError:
        return
    assert len(model.layers) == len(backbone) + len(head)


@FAST
@given(tokens=st.lists(st.text(max_size=30), max_size=6))
def test_cli_parser_fails_only_with_project_errors(tokens):
    try:
        get_cfg(parse_overrides(tokens))
    except MirrordetError:
        pass


@pytest.mark.parametrize("token", ["epochs=!!python/object/apply:os.system ['true']", "imgsz={a: 1}", "epochs=1e999"])
def test_cli_hostile_values(token):
    with pytest.raises(MirrordetError):
        get_cfg(parse_overrides([token]))
