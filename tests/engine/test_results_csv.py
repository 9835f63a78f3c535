"""Tests of mirrordet.engine.callbacks_io.ResultsCSV."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mirrordet.engine.callbacks_io import ResultsCSV

COLS = ["epoch", "train/box_loss", "metrics/mAP50-95(B)", "lr/pg0"]


def _row(e: int) -> dict:
    return {"epoch": e, "train/box_loss": 1.0 / e, "metrics/mAP50-95(B)": 0.1 * e, "lr/pg0": 0.01}


def test_append_and_read(tmp_path):
    path = tmp_path / "results.csv"
    r = ResultsCSV(path, COLS)
    assert path.read_text().strip() == ",".join(COLS)
    for e in (1, 2, 3):
        r.append(_row(e))
    rows = r.read()
    assert [row["epoch"] for row in rows] == [1, 2, 3]
    assert isinstance(rows[0]["epoch"], int)
    assert rows[2]["train/box_loss"] == pytest.approx(1 / 3)
    assert rows[1]["metrics/mAP50-95(B)"] == pytest.approx(0.2)
    assert len(r) == 3
    lines = path.read_text().splitlines()
    assert len(lines) == 4 and all(line.count(",") == 3 for line in lines)
    assert not list(tmp_path.glob(".*.tmp"))  # no temp file left behind


def test_numpy_tensor_and_none_values(tmp_path):
    r = ResultsCSV(tmp_path / "results.csv", COLS)
    r.append({"epoch": np.int64(1), "train/box_loss": torch.tensor(0.5), "metrics/mAP50-95(B)": None,
              "lr/pg0": np.float32(0.25)})
    row = r.read()[0]
    assert row == {"epoch": 1, "train/box_loss": 0.5, "metrics/mAP50-95(B)": "", "lr/pg0": 0.25}
    assert r.column("lr/pg0") == [0.25]


def test_row_must_match_columns(tmp_path):
    r = ResultsCSV(tmp_path / "results.csv", COLS)
    with pytest.raises(ValueError, match="missing"):
        r.append({"epoch": 1})
    with pytest.raises(ValueError, match="unknown"):
        r.append({**_row(1), "extra": 3})
    with pytest.raises(ValueError):
        ResultsCSV(tmp_path / "x.csv", ["loss"])


def test_resume_truncates_rows_written_after_checkpoint(tmp_path):
    path = tmp_path / "results.csv"
    r = ResultsCSV(path, COLS)
    for e in range(1, 6):
        r.append(_row(e))
    # the checkpoint holds epochs 1..3; rows 4 and 5 were written after it and must go
    resumed = ResultsCSV(path, COLS, resume_epoch=4)
    assert [row["epoch"] for row in resumed.read()] == [1, 2, 3]  # already truncated on disk
    resumed.append(_row(4))
    rows = resumed.read()
    assert [row["epoch"] for row in rows] == [1, 2, 3, 4]
    assert rows[0]["train/box_loss"] == pytest.approx(1.0)  # old values preserved


def test_fresh_run_replaces_old_file_and_resume_without_file(tmp_path):
    path = tmp_path / "results.csv"
    r = ResultsCSV(path, COLS)
    r.append(_row(1))
    fresh = ResultsCSV(path, COLS)
    assert fresh.read() == []
    assert ResultsCSV.columns_of(path) == COLS
    other = ResultsCSV(tmp_path / "new" / "results.csv", COLS, resume_epoch=3)
    assert other.read() == [] and (tmp_path / "new" / "results.csv").is_file()


def test_resume_with_padded_file(tmp_path):
    path = tmp_path / "results.csv"
    path.write_text("  epoch,  train/box_loss\n    1,   0.5\n    2,   0.4\n    3,   0.3\n")
    r = ResultsCSV(path, ["epoch", "train/box_loss"], resume_epoch=3)
    assert r.read() == [{"epoch": 1, "train/box_loss": 0.5}, {"epoch": 2, "train/box_loss": 0.4}]
