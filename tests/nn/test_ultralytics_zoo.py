"""Zoo parity with an installed Ultralytics (skipped without it): every detect/classify model YAML it
ships builds here, at every scale, with its parameter count and state-dict layout; the first scale of
each file also gives the same eval output with shared weights. Run from a venv that has both:
``python -m pytest tests/nn/test_ultralytics_zoo.py`` (the table: ``python bench/zoo_parity.py``)."""

import importlib.util
import sys
from pathlib import Path

import pytest

pytest.importorskip("ultralytics")

_spec = importlib.util.spec_from_file_location("zoo_parity", Path(__file__).parents[2] / "bench" / "zoo_parity.py")
zoo = importlib.util.module_from_spec(_spec)
sys.modules["zoo_parity"] = zoo  # its dataclasses resolve their module
_spec.loader.exec_module(zoo)

ROOT = zoo.models_root()
PAIRS = zoo.reference_pairs(ROOT)
FIRST = {path: scale for path, scale in reversed(PAIRS)}  # the first scale of each file


@pytest.mark.parametrize("path, scale", PAIRS, ids=[f"{p.name}:{s}" for p, s in PAIRS])
def test_same_count_and_layout(path, scale):
    r = zoo.compare(path, scale, ROOT, numeric=FIRST[path] == scale)
    assert r.params == r.reference and not r.layout_diff, r.layout_diff[:5]
    if r.max_abs_diff is not None:
        assert r.max_abs_diff < 1e-3
