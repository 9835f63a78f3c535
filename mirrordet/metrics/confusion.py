"""Detection confusion matrix with a background class.

``matrix[pred, true]`` counts, over all images:
- a ground-truth box of class ``t`` matched (class-agnostic IoU > ``iou_thres``) by a detection of
  class ``p``: ``matrix[p, t]``;
- a ground-truth box no detection matched (missed): ``matrix[nc, t]`` (predicted background);
- a detection that matched no ground-truth box (false alarm): ``matrix[p, nc]`` (true background).
Matches are one-to-one, highest IoU first. Only detections with score >= ``conf`` count.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torchvision.ops import box_iou

from mirrordet.utils.errors import MirrordetError


class ConfusionMatrix:
    """Accumulating ``[nc + 1, nc + 1]`` confusion matrix (rows predicted, columns true).

    Args:
        nc: number of classes; index ``nc`` is background.
        conf: minimum detection score counted.
        iou_thres: IoU above which a detection and a ground-truth box are paired.
    """

    def __init__(self, nc: int, conf: float = 0.25, iou_thres: float = 0.45) -> None:
        self.nc = int(nc)
        self.conf = float(conf)
        self.iou_thres = float(iou_thres)
        self.matrix = np.zeros((self.nc + 1, self.nc + 1), dtype=np.int64)

    def update(self, detections: Any, gt_cls: Any, gt_boxes: Any) -> None:
        """Add one image.

        Args:
            detections: [n, 6] x1, y1, x2, y2 (pixels), score, class; tensor or array; None for none.
            gt_cls: [m] class indices.
            gt_boxes: [m, 4] xyxy pixels, same frame as ``detections``.
        """
        bg = self.nc
        det = torch.zeros((0, 6)) if detections is None else torch.as_tensor(detections).detach()
        det = det.reshape(-1, 6).cpu().float()
        det = det[det[:, 4] >= self.conf]
        det_cls = det[:, 5].round().long().numpy()
        true_cls = torch.as_tensor(gt_cls).detach().reshape(-1).cpu().double().round().long().numpy()
        boxes = torch.as_tensor(gt_boxes).detach().reshape(-1, 4).cpu().float()
        for name, values in (("detection", det_cls), ("ground-truth", true_cls)):
            if len(values) and (values.min() < 0 or values.max() >= self.nc):
                raise MirrordetError(f"{name} class index outside 0..{self.nc - 1} in ConfusionMatrix.update")

        gt_matched = np.zeros(len(true_cls), dtype=bool)
        det_matched = np.zeros(len(det_cls), dtype=bool)
        if len(true_cls) and len(det_cls):
            iou = box_iou(boxes, det[:, :4]).numpy()  # [m, n]
            gi, di = np.nonzero(iou > self.iou_thres)
            if len(gi):
                order = np.argsort(-iou[gi, di], kind="stable")
                pairs_g, pairs_d = [], []
                for g, d in zip(gi[order].tolist(), di[order].tolist()):  # greedy, highest IoU first
                    if not gt_matched[g] and not det_matched[d]:
                        gt_matched[g] = det_matched[d] = True
                        pairs_g.append(g)
                        pairs_d.append(d)
                gi, di = np.asarray(pairs_g, dtype=np.int64), np.asarray(pairs_d, dtype=np.int64)
                np.add.at(self.matrix, (det_cls[di], true_cls[gi]), 1)
        np.add.at(self.matrix, (np.full((~gt_matched).sum(), bg), true_cls[~gt_matched]), 1)
        np.add.at(self.matrix, (det_cls[~det_matched], np.full((~det_matched).sum(), bg)), 1)

    def normalized(self) -> np.ndarray:
        """[nc + 1, nc + 1] float matrix with each column (true class) summing to 1 (0 for empty columns)."""
        totals = self.matrix.sum(0, keepdims=True)
        return self.matrix / np.maximum(totals, 1)

    def tp_fp(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-class true positives (diagonal) and false positives (row sum minus diagonal), [nc] each."""
        tp = np.diag(self.matrix)[: self.nc]
        fp = self.matrix.sum(1)[: self.nc] - tp
        return tp, fp
