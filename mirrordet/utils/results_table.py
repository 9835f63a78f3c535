"""The one reader of results.csv files (training runs' per-epoch table): the writer
(engine.callbacks_io.ResultsCSV), results.png and `mirrordet compare` all read through it."""

from __future__ import annotations

import csv
import math
from pathlib import Path


def read_table(path: str | Path) -> tuple[list[str], list[dict[str, str]]]:
    """results.csv -> (header, rows) with every name and cell stripped; empty lines are skipped and
    cells beyond the header dropped.

    Raises:
        OSError, UnicodeDecodeError, csv.Error: the file cannot be read as UTF-8 CSV text.
    """
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f, skipinitialspace=True)
        header = [h.strip() for h in (reader.fieldnames or [])]
        rows = [{k.strip(): (v or "").strip() for k, v in raw.items() if isinstance(k, str)} for raw in reader]
    return header, rows


def numeric_columns(header: list[str], rows: list[dict[str, str]]) -> dict[str, list[float]]:
    """{column: values} of the columns whose cells are all numbers (an empty cell is nan)."""
    out: dict[str, list[float]] = {}
    for name in header:
        try:
            out[name] = [float(r[name]) if r.get(name, "") != "" else math.nan for r in rows]
        except ValueError:
            continue  # a text column
    return out
