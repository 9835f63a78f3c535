"""Tests of mirrordet.utils.files: atomic writes."""

from __future__ import annotations

import os

import pytest

from mirrordet.utils.files import atomic_save, atomic_write_bytes, atomic_write_text


def test_atomic_save_streams_into_place(tmp_path):
    path = tmp_path / "sub" / "w.bin"
    assert atomic_save(path, lambda f: f.write(b"abc")) == path
    assert path.read_bytes() == b"abc"
    assert oct(os.stat(path).st_mode & 0o777) == oct(0o644)
    atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"new"
    atomic_write_text(path, "t\u00e9xt")
    assert path.read_text(encoding="utf-8") == "t\u00e9xt"


def test_failed_writer_keeps_old_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "last.pt"
    path.write_bytes(b"old")

    def half_then_fail(f):
        f.write(b"partial")
        raise KeyboardInterrupt  # e.g. the run is killed while saving

    with pytest.raises(KeyboardInterrupt):
        atomic_save(path, half_then_fail)
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]
