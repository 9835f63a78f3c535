"""compare.png, compare_curves.png and val_batch0.png: valid PNGs, edge cases, no pyplot."""

import subprocess
import sys
import textwrap

import numpy as np
import torch

from mirrordet.plotting.compare import plot_curves, plot_tradeoff
from mirrordet.plotting.val_batch import _mosaic, plot_val_batch

PNG = b"\x89PNG\r\n\x1a\n"
NAMES = {0: "circle", 1: "square", 2: "triangle", 3: "star"}


def assert_png(path):
    data = path.read_bytes()
    assert data[:8] == PNG and len(data) > 1000


def make_batch(b=5, size=64):
    g = torch.Generator().manual_seed(0)
    return {
        "img": (torch.rand(b, 3, size, size, generator=g) * 255).to(torch.uint8),
        "cls": torch.tensor([[0.0], [1.0], [3.0]]),
        "bboxes": torch.tensor([[0.3, 0.3, 0.2, 0.2], [0.6, 0.6, 0.3, 0.2], [0.5, 0.5, 0.9, 0.9]]),
        "batch_idx": torch.tensor([0.0, 0.0, 4.0]),
    }


def test_tradeoff_plot_with_and_without_spread(tmp_path):
    costs = {"GFLOPs": ([8.7, 9.1], None), "CPU latency (ms)": ([12.0, 15.5], [0.3, None]),
             "GPU latency (ms)": ([None, None], None)}  # never measured: no panel
    out = plot_tradeoff(["yolov8n", "yolov8n-mirror"], [0.61, 0.59], [0.01, None], costs, "mAP50-95",
                        tmp_path / "compare.png", imgsz=192)
    assert out == tmp_path / "compare.png"
    assert_png(out)
    assert_png(plot_tradeoff(["a"], [None], [None], {}, "top1", tmp_path / "empty.png"))


def test_curves_plot(tmp_path):
    e = np.arange(1, 6)
    curves = {"a": {"train/loss": (e, 1 / e, 0.1 / e), "metrics/mAP50-95": (e, e / 10, np.zeros(5))},
              "b": {"train/loss": (e, 1.2 / e, np.zeros(5))}}
    assert_png(plot_curves(curves, tmp_path / "compare_curves.png"))
    assert_png(plot_curves({}, tmp_path / "none.png"))


def test_mosaic_layout():
    images = np.zeros((5, 3, 10, 20), np.uint8)
    images[4] = 7
    grid, offsets = _mosaic(images)
    assert grid.shape == (2 * 10 + 2, 3 * 20 + 2 * 2, 3)  # 3 columns, 2 rows, 2-pixel gaps
    assert offsets[4] == (22, 12) and (grid[12:22, 22:42] == 7).all() and (grid[10:12] == 255).all()


def test_val_batch_plot(tmp_path):
    preds = [torch.tensor([[10.0, 10.0, 30.0, 30.0, 0.9, 0.0], [0.0, 0.0, 5.0, 5.0, 0.1, 2.0]])] * 5
    out = plot_val_batch(make_batch(), preds, NAMES, tmp_path / "val_batch0.png")
    assert out == tmp_path / "val_batch0.png"
    assert_png(out)
    # no labels, no predictions, more images than drawn, names as a list
    empty = {**make_batch(20), "cls": torch.zeros(0, 1), "bboxes": torch.zeros(0, 4), "batch_idx": torch.zeros(0)}
    assert_png(plot_val_batch(empty, [torch.zeros(0, 6)] * 20, list(NAMES.values()), tmp_path / "empty.png"))


def test_no_pyplot(tmp_path):
    code = textwrap.dedent(f"""
        import sys
        import numpy as np
        from mirrordet.plotting.compare import plot_tradeoff
        from mirrordet.plotting.val_batch import plot_val_batch
        plot_tradeoff(["a"], [0.5], [None], {{"GFLOPs": ([1.0], None)}}, "mAP50-95", r"{tmp_path / 'a.png'}")
        batch = {{"img": np.zeros((1, 3, 32, 32), np.uint8), "cls": np.zeros((0, 1)), "bboxes": np.zeros((0, 4)),
                 "batch_idx": np.zeros(0)}}
        plot_val_batch(batch, [np.zeros((0, 6))], ["a"], r"{tmp_path / 'b.png'}")
        assert "matplotlib.pyplot" not in sys.modules
        """)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    assert_png(tmp_path / "a.png")
    assert_png(tmp_path / "b.png")
