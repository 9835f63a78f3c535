"""The Pascal VOC detection metric: per-class AP at IoU 0.5, difficult objects ignored.

For each class the detections of all images are sorted by score (stable), and each is matched to the
unmatched ground-truth box of its image with the highest IoU (VOC's pixel-inclusive IoU, ``+1`` on widths
and heights, as the devkit computes it). IoU >= 0.5 with a non-difficult box: true positive; with a
difficult box: ignored (neither true nor false positive); otherwise (or the box already taken): false
positive. Difficult boxes do not count toward recall. Two APs of the resulting precision-recall curve:

- ``voc07``: the 11-point interpolated AP of VOC2007 (mean of the maximum precision at recall >= 0, 0.1, ..., 1);
- ``area``: the VOC2010+ AP, the area under the monotone precision envelope.

Classes without a non-difficult ground-truth box are left out of the means.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np


@dataclass
class VOCResult:
    """Per-class and mean APs of :func:`voc_evaluate` (nan for classes without ground truth)."""

    ap07: np.ndarray
    ap: np.ndarray
    n_gt: np.ndarray

    @property
    def map07(self) -> float:
        keep = self.n_gt > 0
        return float(self.ap07[keep].mean()) if keep.any() else float("nan")

    @property
    def map(self) -> float:
        keep = self.n_gt > 0
        return float(self.ap[keep].mean()) if keep.any() else float("nan")


def voc_ap(recall: np.ndarray, precision: np.ndarray, use_07: bool) -> float:
    """AP of one precision-recall curve (arrays in detection order): 11-point (``use_07``) or area."""
    if use_07:
        return float(np.mean([precision[recall >= t].max() if (recall >= t).any() else 0.0
                              for t in np.linspace(0, 1, 11)]))
    r = np.concatenate([[0.0], recall, [1.0]])
    p = np.concatenate([[0.0], precision, [0.0]])
    p = np.maximum.accumulate(p[::-1])[::-1]
    steps = np.where(r[1:] != r[:-1])[0]
    return float(np.sum((r[steps + 1] - r[steps]) * p[steps + 1]))


def _iou(box: np.ndarray, gts: np.ndarray) -> np.ndarray:
    """VOC IoU of one box [4] with boxes [m, 4], all xyxy pixels, pixel-inclusive (+1)."""
    iw = np.clip(np.minimum(box[2], gts[:, 2]) - np.maximum(box[0], gts[:, 0]) + 1.0, 0, None)
    ih = np.clip(np.minimum(box[3], gts[:, 3]) - np.maximum(box[1], gts[:, 1]) + 1.0, 0, None)
    inter = iw * ih
    area = (box[2] - box[0] + 1.0) * (box[3] - box[1] + 1.0)
    return inter / (area + (gts[:, 2] - gts[:, 0] + 1.0) * (gts[:, 3] - gts[:, 1] + 1.0) - inter)


def voc_evaluate(detections: Sequence[np.ndarray], ground_truth: Sequence[Mapping[str, np.ndarray]], nc: int,
                 iou_thr: float = 0.5) -> VOCResult:
    """VOC APs of a split.

    Args:
        detections: per image [n, 6] (x1, y1, x2, y2 pixels, score, class index).
        ground_truth: per image (same order) ``{"boxes": [m, 4] xyxy pixels, "cls": [m] int, "difficult": [m] bool}``.
        nc: number of classes. iou_thr: the match threshold (0.5 in VOC).
    """
    ap07, ap, n_gt = np.full(nc, np.nan), np.full(nc, np.nan), np.zeros(nc, np.int64)
    for c in range(nc):
        gts = []
        for g in ground_truth:
            sel = np.asarray(g["cls"]) == c
            gts.append((np.asarray(g["boxes"], float).reshape(-1, 4)[sel], np.asarray(g["difficult"], bool)[sel]))
        n_gt[c] = sum(int((~d).sum()) for _, d in gts)
        if n_gt[c] == 0:
            continue
        rows = [(i, d) for i, det in enumerate(detections) for d in np.asarray(det, float).reshape(-1, 6) if d[5] == c]
        order = np.argsort([-d[4] for _, d in rows], kind="stable")
        taken = [np.zeros(len(b), bool) for b, _ in gts]
        tp, fp = np.zeros(len(rows)), np.zeros(len(rows))
        for k, j in enumerate(order):
            i, d = rows[j]
            boxes, difficult = gts[i]
            if len(boxes):
                ious = _iou(d[:4], boxes)
                m = int(ious.argmax())
                if ious[m] >= iou_thr:
                    if difficult[m]:
                        continue  # matched to a difficult object: ignored
                    if not taken[i][m]:
                        tp[k], taken[i][m] = 1, True
                        continue
            fp[k] = 1
        tp, fp = np.cumsum(tp), np.cumsum(fp)
        recall = tp / n_gt[c]
        precision = tp / np.maximum(tp + fp, np.finfo(float).eps)
        ap07[c], ap[c] = voc_ap(recall, precision, True), voc_ap(recall, precision, False)
    return VOCResult(ap07, ap, n_gt)
