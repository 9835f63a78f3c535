"""The inert reader: other tools' pickled checkpoints become data; nothing named in the file runs."""

from __future__ import annotations

import builtins
import os
import subprocess
import sys
import types

import pytest
import torch
from torch import nn

from mirrordet.utils.errors import CheckpointError
from mirrordet.utils.inert_pickle import Record, load_inert, walk_module


class SystemCall:
    """Unpickling it would run ``touch marker`` (a classic planted payload)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class Exec:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return builtins.exec, (f"open({self.marker!r}, 'w').close()",)


class Popen:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return subprocess.Popen, (["touch", self.marker],)


def test_plain_data_and_tensors_round_trip(tmp_path):
    obj = {"a": torch.arange(6, dtype=torch.float16).view(2, 3), "b": [1, "x", None, 2.5], "s": {1, 2},
           "t": (True, b"raw"), "view": torch.arange(10)[2:7]}
    torch.save(obj, tmp_path / "f.pt")
    got = load_inert(tmp_path / "f.pt")
    assert got["b"] == obj["b"] and got["s"] == obj["s"] and got["t"] == obj["t"]
    assert got["a"].dtype == torch.float16 and torch.equal(got["a"], obj["a"])
    assert torch.equal(got["view"], obj["view"])


def test_a_pickled_module_is_a_record_with_its_state_dict(tmp_path):
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.SiLU())
    torch.save({"model": net}, tmp_path / "m.pt")
    rec = load_inert(tmp_path / "m.pt")["model"]
    assert isinstance(rec, Record) and rec.cls == "torch.nn.modules.container.Sequential"
    got = dict(walk_module(rec))
    want = net.state_dict()
    assert list(got) == list(want)
    assert all(torch.equal(got[k], want[k]) for k in want)
    assert rec.attr("_modules")["1"].attr("eps") == 1e-5


@pytest.mark.parametrize("payload", [SystemCall, Exec, Popen], ids=["os.system", "builtins.exec", "subprocess.Popen"])
@pytest.mark.parametrize("where", ["top", "nested-in-module"])
def test_planted_payloads_are_refused_and_never_run(tmp_path, payload, where):
    marker = tmp_path / "ran"
    net = nn.Conv2d(1, 1, 1)
    if where == "top":
        obj = {"model": net, "train_args": payload(marker)}
    else:
        net.extra = {"deep": [payload(marker)]}
        obj = {"model": net}
    torch.save(obj, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="never loaded"):
        load_inert(tmp_path / "evil.pt")
    assert not marker.exists()


def test_a_function_of_a_record_module_becomes_a_record_and_is_not_called(tmp_path, monkeypatch):
    marker = tmp_path / "ran"
    mod = types.ModuleType("ultralytics")

    def touch(path):
        open(path, "w").close()

    touch.__module__, touch.__qualname__ = "ultralytics", "touch"
    mod.touch = touch
    monkeypatch.setitem(sys.modules, "ultralytics", mod)

    class Call:
        def __reduce__(self):
            return touch, (str(marker),)

    torch.save({"x": Call()}, tmp_path / "f.pt")
    got = load_inert(tmp_path / "f.pt")["x"]
    assert isinstance(got, Record) and got.cls == "ultralytics.touch" and got.args == (str(marker),)
    assert not marker.exists()


def test_a_tuple_dict_key_is_refused_before_it_is_hashed(tmp_path):
    torch.save({(1, 2): 3}, tmp_path / "k.pt")
    with pytest.raises(CheckpointError, match="dict key"):
        load_inert(tmp_path / "k.pt")


@pytest.mark.parametrize("content", [b"", b"not a zip", b"\x80\x02}q\x00."], ids=["empty", "text", "raw-pickle"])
def test_non_archives_are_refused(tmp_path, content):
    (tmp_path / "x.pt").write_bytes(content)
    with pytest.raises(CheckpointError):
        load_inert(tmp_path / "x.pt")


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_inert(tmp_path / "nope.pt")
