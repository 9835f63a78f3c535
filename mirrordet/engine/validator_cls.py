"""Classification validator: top-1 / top-5 accuracy, per-class table, confusion matrix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from mirrordet.data.preprocess import to_unit_float
from mirrordet.utils.files import atomic_write_text
from mirrordet.utils.log import LOGGER

CLS_METRIC_KEYS = ("metrics/accuracy_top1", "metrics/accuracy_top5")


def class_accuracy_table(names: dict[int, str], matrix: np.ndarray) -> str:
    """``Class Images top1_acc`` rows (``all`` first) from a [nc, nc] (true, predicted) count matrix."""
    per_class = matrix.sum(1)
    correct = np.diag(matrix)
    width = max(22, *(len(str(n)) + 2 for n in names.values()))
    lines = [f"{'Class':>{width}}{'Images':>11}{'top1_acc':>11}",
             f"{'all':>{width}}{int(per_class.sum()):>11d}{correct.sum() / max(per_class.sum(), 1):>11.3f}"]
    for c, name in names.items():
        acc = correct[c] / per_class[c] if per_class[c] else float("nan")
        lines.append(f"{str(name):>{width}}{int(per_class[c]):>11d}{acc:>11.3f}")
    return "\n".join(lines)


class ClassificationValidator:
    """Validates a classifier on one split (``ClassificationDataset`` + its loader)."""

    def __init__(self, dataset: Any, loader: Any, save_dir: Path | None = None) -> None:
        self.dataset, self.loader, self.save_dir = dataset, loader, save_dir
        self.names = dataset.names

    @torch.inference_mode()
    def __call__(self, model: torch.nn.Module, device: torch.device, half: bool = False, verbose: bool = True,
                 plots: bool = True, save_json: bool = True, channels_last: bool = False) -> dict[str, Any]:
        """Top-1 / top-5 over the split; ``channels_last`` feeds the images NHWC."""
        was_training = model.training
        model.eval()
        nc = len(self.names)
        matrix = np.zeros((nc, nc), dtype=np.int64)
        top5_hits, n = 0, 0
        per_image: list[dict[str, Any]] = []  # predictions.json: the per-image outcome (shortcut checks)
        for batch in tqdm(self.loader, desc="val", leave=False, disable=not verbose, dynamic_ncols=True):
            img = batch["img"].to(device, non_blocking=True)
            img = to_unit_float(img, half)
            if channels_last:
                img = img.contiguous(memory_format=torch.channels_last)
            probs = model(img).float()
            target = batch["cls"].to(device)
            top = probs.topk(min(5, nc), 1).indices
            top5_hits += int((top == target[:, None]).any(1).sum())
            n += len(target)
            pred = top[:, 0].cpu().numpy()
            np.add.at(matrix, (target.cpu().numpy(), pred), 1)
            per_image += [{"im_file": f, "cls": int(c), "pred": int(p), "score": float(s)} for f, c, p, s in
                          zip(batch["im_file"], target.tolist(), pred.tolist(), probs.max(1).values.tolist())]
        model.train(was_training)
        top1 = float(np.trace(matrix) / max(n, 1))
        metrics: dict[str, Any] = {"metrics/accuracy_top1": top1, "metrics/accuracy_top5": top5_hits / max(n, 1)}
        metrics["fitness"] = top1
        LOGGER.info(class_accuracy_table(self.names, matrix) if verbose else
                    f"val: top1_acc {top1:.3f} top5_acc {metrics['metrics/accuracy_top5']:.3f} ({n} images)")
        if self.save_dir is not None:
            d = self.save_dir
            d.mkdir(parents=True, exist_ok=True)
            per_class = {str(self.names[c]): {"images": int(matrix[c].sum()),
                                              "top1": float(matrix[c, c] / matrix[c].sum()) if matrix[c].sum() else None}
                         for c in range(nc)}
            atomic_write_text(d / "metrics.json", json.dumps({**metrics, "per_class": per_class}, indent=2))
            if save_json:
                atomic_write_text(d / "predictions.json", json.dumps(per_image))
            if plots:
                from mirrordet.plotting.confusion import plot_confusion_matrix

                plot_confusion_matrix(matrix.T, self.names, d / "confusion_matrix.png", background=False)
                plot_confusion_matrix(matrix.T, self.names, d / "confusion_matrix_normalized.png", normalize=True,
                                      background=False)
        return metrics
