"""Bounded YAML loading: anchor bombs, recursive aliases, deep nesting and non-UTF-8 bytes are
refused at once with the caller's error type; ordinary YAML loads exactly as yaml.safe_load."""

import time
from pathlib import Path

import pytest
import yaml

from mirrordet.utils.errors import ConfigError, DatasetError, ModelConfigError
from mirrordet.utils.files import bundled_dir
from mirrordet.utils.safe_yaml import MAX_DEPTH, MAX_NODES, check_bounded, load_yaml_file, load_yaml_text


def anchor_bomb(levels: int = 9, width: int = 9) -> str:
    """A flow list of ``levels`` anchors, each ``width`` aliases of the previous: width**levels leaves."""
    items = [f"&a0 [{', '.join(['x'] * width)}]"]
    items += [f"&a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, levels)]
    return f"[{', '.join(items)}]"


def test_anchor_bomb_is_refused_fast():
    text = f"names: {anchor_bomb()}\n"
    assert len(text) < 600
    t = time.perf_counter()
    with pytest.raises(DatasetError, match=r"data\.yaml: expands to more than 100,000 nodes"):
        load_yaml_text(text, "data.yaml", DatasetError)
    assert time.perf_counter() - t < 1.0


def test_small_expansion_loads_like_safe_load():
    text = f"a: {anchor_bomb(levels=3)}\nb: &m {{k: 1}}\nc:\n  <<: *m\n  j: 2\n"
    assert load_yaml_text(text, "f.yaml") == yaml.safe_load(text)


BUNDLED = sorted(bundled_dir("models").glob("*.yaml")) + sorted(bundled_dir("data").glob("*.yaml"))


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.name)
def test_bundled_yamls_load_unchanged(path: Path):
    assert load_yaml_file(path, ModelConfigError) == yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("text, match", [
    ("a: &a [1, *a]\n", "recursive alias"),
    ("a: &a {k: *a}\n", "recursive alias"),
    ("[" * 20000 + "]" * 20000, f"nested too deeply \\(more than {MAX_DEPTH} levels\\)"),
    ("{a: " * 20000 + "}" * 20000, "nested too deeply"),
    ("- " * 20000 + "x\n", "nested too deeply"),
    ("".join(" " * i + "k:\n" for i in range(MAX_DEPTH + 1)) + " " * (MAX_DEPTH + 1) + "x\n", "nested"),
    ("a: 2001-02-30\n", "bad YAML value: day is out of range"),
    ("a: [1, 2\n", r"not valid YAML: .*\(line 2, column 1\)"),
    ("{[1]: 2}\n", "not valid YAML: .*unhashable key"),
    ("a: caf\udce9\n", "not valid YAML: unacceptable character #xdce9"),  # an undecodable byte of argv
    ("a: 1\x00\n", "not valid YAML: unacceptable character #x0000"),
])
def test_bad_texts_are_one_line_errors_of_the_given_type(text, match):
    t = time.perf_counter()
    with pytest.raises(ModelConfigError, match=match) as e:
        load_yaml_text(text, "m.yaml", ModelConfigError)
    assert time.perf_counter() - t < 1.0
    assert str(e.value).startswith("m.yaml: ") and "\n" not in str(e.value)


def test_depth_within_the_bound_loads():
    n = MAX_DEPTH - 1
    assert load_yaml_text("[" * n + "1" + "]" * n, "f") == yaml.safe_load("[" * n + "1" + "]" * n)


def test_invalid_as_text_returns_the_text_but_still_refuses_bombs():
    assert load_yaml_text("a: b: c", "'name='", invalid_as_text=True) == "a: b: c"
    assert load_yaml_text("caf\udce9", "'name='", invalid_as_text=True) == "caf\udce9"
    with pytest.raises(ConfigError, match="'save=': expands"):
        load_yaml_text(anchor_bomb(), "'save='", invalid_as_text=True)


def test_node_bound_counts_plain_nodes_too():
    flat = "[" + ", ".join(["1"] * MAX_NODES) + "]"
    with pytest.raises(ConfigError, match="more than 100,000 nodes"):
        load_yaml_text(flat, "big.yaml")
    assert len(load_yaml_text("[" + ", ".join(["1"] * 1000) + "]", "ok.yaml")) == 1000


def test_non_utf8_file_names_the_file(tmp_path):
    p = tmp_path / "latin1.yaml"
    p.write_bytes("names: [caf\u00e9]\n".encode("latin-1"))
    with pytest.raises(DatasetError, match=r"latin1\.yaml: not UTF-8 text \(byte 0xe9"):
        load_yaml_file(p, DatasetError)
    with pytest.raises(DatasetError, match="cannot read the file"):
        load_yaml_file(tmp_path, DatasetError)  # a folder


def test_check_bounded_is_linear_in_shared_objects():
    v: list = [1]
    for _ in range(60):
        v = [v, v]  # 2**60 leaves, 61 distinct lists
    t = time.perf_counter()
    with pytest.raises(ConfigError, match="value: expands to more than"):
        check_bounded(v, "value")
    assert time.perf_counter() - t < 1.0
    loop: list = []
    loop.append(loop)
    with pytest.raises(ConfigError, match="recursive"):
        check_bounded(loop, "value")
    ok = {"a": [1, 2, (3, 4)], "b": {"c": None}}
    assert check_bounded(ok, "value") is ok
