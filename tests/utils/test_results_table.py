"""The one results.csv reader: stripped names and cells, numeric columns only, extra cells dropped."""

import math

from mirrordet.utils.results_table import numeric_columns, read_table


def test_read_table_and_numeric_columns(tmp_path):
    p = tmp_path / "results.csv"
    p.write_text("epoch, train/box_loss ,note,metrics/mAP50\n1, 2.5,ok,0.1\n\n2,,text,0.2,extra\n")
    header, rows = read_table(p)
    assert header == ["epoch", "train/box_loss", "note", "metrics/mAP50"]
    assert rows == [{"epoch": "1", "train/box_loss": "2.5", "note": "ok", "metrics/mAP50": "0.1"},
                    {"epoch": "2", "train/box_loss": "", "note": "text", "metrics/mAP50": "0.2"}]
    cols = numeric_columns(header, rows)
    assert list(cols) == ["epoch", "train/box_loss", "metrics/mAP50"]  # the text column is left out
    assert cols["train/box_loss"][0] == 2.5 and math.isnan(cols["train/box_loss"][1])


def test_empty_file(tmp_path):
    p = tmp_path / "results.csv"
    p.write_text("")
    assert read_table(p) == ([], [])
