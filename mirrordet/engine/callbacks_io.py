"""results.csv: one row per epoch, written atomically.

Every append rewrites the whole file through a temp file + rename, so a run killed at any
moment leaves either the previous complete file or the new complete file, never a half row.
The file is small (one row per epoch), so the rewrite costs nothing measurable.
"""

from __future__ import annotations

import csv
import io
import math
import numbers
from pathlib import Path
from typing import Any, Sequence

from mirrordet.utils.files import atomic_write_text
from mirrordet.utils.log import LOGGER
from mirrordet.utils.results_table import read_table

__all__ = ["ResultsCSV"]

Value = int | float | str


def _format(v: Any) -> str:
    """Render one cell: ints as ints, floats with 8 significant digits, None as empty."""
    if v is None:
        return ""
    if hasattr(v, "item") and callable(v.item) and getattr(v, "ndim", 0) == 0:  # 0-d tensor / numpy scalar
        v = v.item()
    if isinstance(v, bool):
        return str(int(v))
    if isinstance(v, numbers.Integral):
        return str(int(v))
    if isinstance(v, numbers.Real):
        f = float(v)
        return repr(f) if not math.isfinite(f) else format(f, ".8g")
    return str(v)


def _parse(s: str) -> Value:
    """Inverse of :func:`_format`: int if it looks like one, else float, else the text."""
    s = s.strip()
    try:
        return int(s)
    except ValueError:
        pass
    try:
        return float(s)
    except ValueError:
        return s


class ResultsCSV:
    """Per-epoch results table backed by a CSV file.

    Args:
        path: the CSV file, e.g. ``<run>/results.csv``.
        columns: column names, in order; must contain ``"epoch"``.
        resume_epoch: ``None`` for a fresh run (any existing file is replaced by an empty
            table at once). When resuming, the first epoch number (in the numbering of the
            ``epoch`` column) the resumed run will write: rows with ``epoch >= resume_epoch``
            (written after the checkpoint was saved) are dropped and the file is rewritten
            immediately. Example: the trainer writes ``epoch = e + 1`` for 0-based epoch ``e``
            and resumes at 0-based ``start_epoch``, so it passes ``resume_epoch=start_epoch + 1``.

    Raises:
        ValueError: ``columns`` is empty, has duplicates, or lacks ``"epoch"``.
    """

    def __init__(self, path: str | Path, columns: Sequence[str], resume_epoch: int | None = None) -> None:
        cols = [str(c) for c in columns]
        if not cols or len(set(cols)) != len(cols) or "epoch" not in cols:
            raise ValueError(f"results columns must be unique, non-empty and include 'epoch'; got {cols}")
        self.path = Path(path)
        self.columns: list[str] = cols
        self._rows: list[dict[str, str]] = []
        if resume_epoch is not None:
            self._rows = [r for r in self._read_raw() if self._epoch_of(r) < resume_epoch]
        self._write()

    # -- file io ---------------------------------------------------------------------------
    def _read_raw(self) -> list[dict[str, str]]:
        """Rows of the existing file as strings, re-keyed to ``self.columns`` (missing cells empty)."""
        if not self.path.is_file():
            return []
        header, rows = read_table(self.path)
        extra = [h for h in header if h not in self.columns]
        if extra:
            LOGGER.warning(f"{self.path}: dropping column(s) {extra} not produced by this run")
        return [{c: r.get(c, "") for c in self.columns} for r in rows]

    @staticmethod
    def _epoch_of(row: dict[str, str]) -> float:
        try:
            return float(row["epoch"])
        except (KeyError, ValueError):
            return math.inf  # a row without a readable epoch cannot be trusted: drop it on resume

    def _write(self) -> None:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=self.columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self._rows)
        atomic_write_text(self.path, buf.getvalue())

    # -- public api --------------------------------------------------------------------------
    def append(self, row: dict[str, Any]) -> None:
        """Add one epoch's row and rewrite the file atomically.

        Args:
            row: ``{column: value}`` with exactly the table's columns; values may be ints,
                floats, strings, ``None`` (empty cell), numpy scalars or 0-d tensors.

        Raises:
            ValueError: ``row`` misses a column or names an unknown one.
        """
        missing = [c for c in self.columns if c not in row]
        unknown = [k for k in row if k not in self.columns]
        if missing or unknown:
            raise ValueError(
                f"{self.path}: row does not match the columns (missing {missing}, unknown {unknown})"
            )
        self._rows.append({c: _format(row[c]) for c in self.columns})
        self._write()

    def read(self) -> list[dict[str, Value]]:
        """Return the rows on disk, numbers parsed (``int`` or ``float``), empty cells as ``""``."""
        return [{k: _parse(v) if v != "" else "" for k, v in r.items()} for r in self._read_raw()]

    def __len__(self) -> int:
        return len(self._rows)

    def column(self, name: str) -> list[Value]:
        """Return one column of the rows written so far (parsed)."""
        if name not in self.columns:
            raise KeyError(f"unknown results column {name!r}; columns: {self.columns}")
        return [_parse(r[name]) if r[name] != "" else "" for r in self._rows]

    @classmethod
    def columns_of(cls, path: str | Path) -> list[str]:
        """Header of an existing results file (empty list if there is none)."""
        p = Path(path)
        if not p.is_file():
            return []
        return read_table(p)[0]
