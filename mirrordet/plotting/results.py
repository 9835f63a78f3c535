"""results.png: one small line plot per numeric column of results.csv."""

from __future__ import annotations

import math
from pathlib import Path

from mirrordet.plotting.figure import new_figure, save_figure
from mirrordet.utils.errors import MirrordetError
from mirrordet.utils.results_table import numeric_columns, read_table


def _read_numeric_columns(csv_path: Path) -> tuple[list[float] | None, dict[str, list[float]]]:
    """Parse results.csv -> (epoch values or None, {column: values}) for columns that are all numbers."""
    header, rows = read_table(csv_path)
    if not header:
        raise MirrordetError(f"{csv_path} is empty; expected a header row and one row per epoch")
    columns = numeric_columns(header, rows)
    epochs = columns.pop("epoch", None)
    return epochs, columns


def plot_results(csv_path: str | Path) -> Path:
    """Plot every numeric column of ``results.csv`` (except ``epoch``) against the epoch.

    Args:
        csv_path: results.csv with a header row; ``epoch`` (if present) is the x axis.

    Returns:
        path of ``results.png`` written next to the CSV.
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise MirrordetError(f"results file {csv_path} not found; nothing to plot")
    epochs, columns = _read_numeric_columns(csv_path)
    names = list(columns)
    n = max(len(names), 1)
    ncols = min(5, n)
    nrows = math.ceil(n / ncols)
    fig, axes = new_figure((3.0 * ncols, 2.6 * nrows), nrows, ncols, squeeze=False)
    flat = axes.ravel()
    for ax, name in zip(flat, names):
        y = columns[name]
        x = epochs if epochs is not None else list(range(len(y)))
        ax.plot(x, y, marker=".", linewidth=1.5, markersize=4)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.set_ylabel(name.split("/")[-1], fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in flat[len(names):]:
        ax.axis("off")
    if not names:
        flat[0].text(0.5, 0.5, "no numeric columns", ha="center", va="center")
    return save_figure(fig, csv_path.with_name("results.png"))
