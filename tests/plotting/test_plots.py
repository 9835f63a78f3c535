"""Plots: valid PNG files written where asked, no pyplot / global backend state."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from mirrordet.plotting import plot_confusion_matrix, plot_labels, plot_pr_curve, plot_results
from mirrordet.utils.errors import MirrordetError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NAMES = {0: "person", 1: "car", 2: "dog"}


def assert_png(path):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and len(data) > 1000


def write_results_csv(path):
    header = ["epoch", "train/box_loss", "train/cls_loss", "metrics/mAP50(B)", "lr/pg0", "note"]
    rows = [[e, 2.0 / (e + 1), 1.5 / (e + 1), 0.1 * e, 0.01, "ok"] for e in range(5)]
    lines = [",".join(f"{h:>20}" for h in header)] + [",".join(f"{v:>20}" for v in r) for r in rows]
    path.write_text("\n".join(lines) + "\n")


def test_results_png_next_to_csv(tmp_path):
    csv_path = tmp_path / "results.csv"
    write_results_csv(csv_path)
    out = plot_results(csv_path)
    assert out == tmp_path / "results.png"
    assert_png(out)
    with pytest.raises(MirrordetError):
        plot_results(tmp_path / "missing.csv")


def test_pr_curve(tmp_path):
    px = np.linspace(0, 1, 1000)
    py = np.stack([np.clip(1 - px**k, 0, 1) for k in (1, 2, 3)])
    out = plot_pr_curve(px, py, np.array([0.5, 0.66, np.nan]), NAMES, tmp_path / "PR_curve.png")
    assert out == tmp_path / "PR_curve.png"
    assert_png(out)


def test_confusion_matrix_plain_and_normalized(tmp_path):
    m = np.array([[5, 1, 0, 2], [0, 3, 0, 1], [1, 0, 0, 0], [1, 2, 0, 0]])
    a = plot_confusion_matrix(m, NAMES, tmp_path / "confusion_matrix.png", normalize=False)
    b = plot_confusion_matrix(m, NAMES, tmp_path / "confusion_matrix_normalized.png", normalize=True)
    assert a.name == "confusion_matrix.png" and b.name == "confusion_matrix_normalized.png"
    assert_png(a)
    assert_png(b)
    assert a.read_bytes() != b.read_bytes()


def test_labels_png_including_empty_dataset(tmp_path):
    rng = np.random.default_rng(0)
    boxes = np.concatenate([rng.uniform(0.2, 0.8, (200, 2)), rng.uniform(0.02, 0.4, (200, 2))], 1)
    out = plot_labels(rng.integers(0, 3, 200), boxes, NAMES, tmp_path / "labels.png")
    assert_png(out)
    assert_png(plot_labels(np.zeros(0), np.zeros((0, 4)), NAMES, tmp_path / "empty_labels.png"))
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temp files


def test_plotting_never_imports_pyplot(tmp_path):
    code = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        from mirrordet.plotting import plot_confusion_matrix
        plot_confusion_matrix(np.eye(3, dtype=int), ["a", "b"], r"{tmp_path / 'cm.png'}")
        assert "matplotlib.pyplot" not in sys.modules
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    assert_png(tmp_path / "cm.png")
