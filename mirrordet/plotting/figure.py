"""Figure creation and atomic PNG saving without pyplot (no global backend state)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mirrordet.utils.files import atomic_save


def new_figure(
    figsize: tuple[float, float], nrows: int = 1, ncols: int = 1, **subplot_kw: Any
) -> tuple[Any, Any]:
    """A standalone matplotlib Figure drawn by the Agg canvas, and its axes.

    Args:
        figsize: (width, height) inches.
        nrows, ncols: subplot grid.
        **subplot_kw: passed to ``Figure.subplots`` (e.g. ``squeeze=False``).

    Returns:
        (figure, axes) as ``Figure.subplots`` returns them.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, tight_layout=True)
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, **subplot_kw)
    return fig, axes


def save_figure(fig: Any, path: str | Path, dpi: int = 150) -> Path:
    """Render ``fig`` to PNG, written atomically to ``path``."""
    return atomic_save(path, lambda f: fig.savefig(f, format="png", dpi=dpi))
