"""Per-class detection statistics: precision, recall, AP and PR curves, plus the class table.

Predictions are matched to ground truth image by image like COCO: in descending score order,
each prediction takes the unmatched ground-truth box of its class with the highest IoU, if that
IoU reaches the threshold; this is done for the ten IoU thresholds 0.50:0.05:0.95 at once.
AP uses COCO's 101-point interpolated precision envelope. Precision and recall are reported
at the single confidence threshold that maximizes the mean F1 over classes.

The COCO-exact numbers of a run come from :mod:`mirrordet.metrics.coco_eval`; this module
supplies P and R, the PR curves, and AP for quick checks without pycocotools.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torchvision.ops import box_iou

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
REC_THRESHOLDS = np.linspace(0.0, 1.0, 101)
CURVE_POINTS = 1000


def match_predictions(
    pred_boxes: torch.Tensor,
    pred_scores: torch.Tensor,
    pred_cls: torch.Tensor,
    gt_boxes: torch.Tensor,
    gt_cls: torch.Tensor,
    iou_thresholds: np.ndarray = IOU_THRESHOLDS,
) -> np.ndarray:
    """Greedy, score-ordered matching of one image's predictions, at several IoU thresholds.

    Args:
        pred_boxes: [n, 4] xyxy pixels.
        pred_scores: [n] confidences.
        pred_cls: [n] class indices.
        gt_boxes: [m, 4] xyxy pixels.
        gt_cls: [m] class indices.
        iou_thresholds: [T] IoU thresholds.

    Returns:
        [n, T] bool, True where the prediction is a true positive at that threshold.
    """
    iou = box_iou(gt_boxes.double(), pred_boxes.double()).T.cpu().numpy()  # [n, m], float64 (empty: [n, 0] or [0, m])
    return match_by_iou(iou, pred_scores, pred_cls, gt_cls, iou_thresholds)


def match_by_iou(iou: np.ndarray, pred_scores: torch.Tensor, pred_cls: torch.Tensor, gt_cls: torch.Tensor,
                 iou_thresholds: np.ndarray = IOU_THRESHOLDS) -> np.ndarray:
    """:func:`match_predictions` on a given IoU matrix [n, m] (prediction x ground truth), e.g. of masks.

    Returns:
        [n, T] bool, True where the prediction is a true positive at that threshold.
    """
    iou = np.asarray(iou, np.float64).reshape(len(pred_scores), len(gt_cls))
    n, m, t = iou.shape[0], iou.shape[1], len(iou_thresholds)
    correct = np.zeros((n, t), dtype=bool)
    if n == 0 or m == 0:
        return correct
    same_cls = pred_cls.view(-1, 1).cpu().numpy() == gt_cls.view(1, -1).cpu().numpy()
    iou = np.where(same_cls, iou, -1.0)
    thr = np.asarray(iou_thresholds, dtype=np.float64).reshape(t, 1)
    has_candidate = (iou >= thr.min()).any(1)
    order = np.argsort(-pred_scores.cpu().numpy(), kind="stable")
    taken = np.zeros((t, m), dtype=bool)
    rows = np.arange(t)
    for i in order[has_candidate[order]]:
        avail = np.where(~taken & (iou[i][None] >= thr), iou[i][None], -1.0)  # [T, m]
        j = avail.argmax(1)
        ok = avail[rows, j] >= 0
        correct[i, ok] = True
        taken[rows[ok], j[ok]] = True
    return correct


def interpolated_precision(recall: np.ndarray, precision: np.ndarray, at: np.ndarray) -> np.ndarray:
    """COCO-style precision envelope sampled at recall values ``at`` (0 beyond the max recall)."""
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    idx = np.searchsorted(recall, at, side="left")
    out = np.zeros(len(at))
    inside = idx < len(recall)
    out[inside] = envelope[idx[inside]]
    return out


@dataclass(frozen=True)
class ClassRow:
    """One row of the class table; ``cls`` is None for the ``all`` row."""

    cls: int | None
    images: int
    instances: int
    p: float
    r: float
    map50: float
    map: float


@dataclass
class DetectionMetrics:
    """Result of :meth:`DetectionStats.compute` (nc classes, T IoU thresholds, 1000-point curves).

    Attributes:
        p, r: [nc] precision and recall at IoU 0.5 at the best-mean-F1 confidence (0 without GT).
        ap50, ap: [nc] AP at IoU 0.5 and averaged over 0.50:0.95 (nan for classes without GT).
        ap_per_iou: [nc, T] AP at each IoU threshold.
        instances: [nc] ground-truth boxes per class; images: [nc] images containing the class.
        n_images: images seen.
        has_gt: [nc] bool, class has at least one ground-truth box.
        best_conf: confidence threshold of p and r.
        px, py: recall grid [1000] and precision [nc, 1000] at IoU 0.5 (PR curves).
        conf_grid: [1000] confidences; p_curve, r_curve, f1_curve: [nc, 1000] against conf_grid.
    """

    p: np.ndarray
    r: np.ndarray
    ap50: np.ndarray
    ap: np.ndarray
    ap_per_iou: np.ndarray
    instances: np.ndarray
    images: np.ndarray
    n_images: int
    has_gt: np.ndarray
    best_conf: float
    px: np.ndarray
    py: np.ndarray
    conf_grid: np.ndarray
    p_curve: np.ndarray
    r_curve: np.ndarray
    f1_curve: np.ndarray

    def _mean(self, x: np.ndarray) -> float:
        return float(np.mean(x[self.has_gt])) if self.has_gt.any() else 0.0

    @property
    def mp(self) -> float:
        """Mean precision over classes with ground truth."""
        return self._mean(self.p)

    @property
    def mr(self) -> float:
        """Mean recall over classes with ground truth."""
        return self._mean(self.r)

    @property
    def map50(self) -> float:
        """Mean AP@0.5 over classes with ground truth."""
        return self._mean(self.ap50)

    @property
    def map(self) -> float:
        """Mean AP@0.5:0.95 over classes with ground truth."""
        return self._mean(self.ap)

    def class_rows(self, ap50: np.ndarray | None = None, ap: np.ndarray | None = None) -> list[ClassRow]:
        """Rows of the class table: ``all`` first, then every class.

        Args:
            ap50, ap: [nc] per-class AP to show instead of this object's own (e.g. COCOeval's);
                nan entries mark classes without ground truth. The ``all`` row shows their mean
                over classes with ground truth, which equals COCOeval's overall AP.

        Returns:
            list of :class:`ClassRow`, length nc + 1.
        """
        ap50 = self.ap50 if ap50 is None else np.asarray(ap50, dtype=np.float64)
        ap = self.ap if ap is None else np.asarray(ap, dtype=np.float64)
        total = int(self.instances.sum())
        rows = [ClassRow(None, self.n_images, total, self.mp, self.mr, self._mean(ap50), self._mean(ap))]
        for c in range(len(self.p)):
            rows.append(
                ClassRow(
                    c, int(self.images[c]), int(self.instances[c]), float(self.p[c]), float(self.r[c]),
                    float(ap50[c]), float(ap[c]),
                )
            )
        return rows


class DetectionStats:
    """Accumulates per-image matches and computes :class:`DetectionMetrics`.

    Args:
        nc: number of classes.
        iou_thresholds: [T] IoU thresholds (default 0.50:0.05:0.95; the first is used for P, R, PR curves).
    """

    def __init__(self, nc: int, iou_thresholds: Sequence[float] | np.ndarray = IOU_THRESHOLDS) -> None:
        self.nc = int(nc)
        self.iou_thresholds = np.asarray(iou_thresholds, dtype=np.float64)
        self._correct: list[np.ndarray] = []
        self._conf: list[np.ndarray] = []
        self._pred_cls: list[np.ndarray] = []
        self.instances = np.zeros(self.nc, dtype=np.int64)
        self.images = np.zeros(self.nc, dtype=np.int64)
        self.n_images = 0

    def update(self, pred: Any, gt_cls: Any, gt_boxes: Any, iou: np.ndarray | None = None) -> None:
        """Add one image.

        Args:
            pred: [n, 6] x1, y1, x2, y2 (pixels), score, class; tensor or array; None for no predictions.
            gt_cls: [m] class indices.
            gt_boxes: [m, 4] xyxy pixels, same frame as ``pred``.
            iou: [n, m] IoU of each prediction with each ground truth to match with instead of the boxes' (e.g.
                of their masks); the boxes are then not read.
        """
        pred_t = torch.zeros((0, 6)) if pred is None else torch.as_tensor(pred).detach()
        pred_t = pred_t.reshape(-1, 6).cpu().double()
        gt_cls_t = torch.as_tensor(gt_cls).detach().reshape(-1).cpu().double().round().long()
        gt_boxes_t = torch.as_tensor(gt_boxes).detach().reshape(-1, 4).cpu().double()
        pred_cls = pred_t[:, 5].round().long()
        if iou is None:
            correct = match_predictions(pred_t[:, :4], pred_t[:, 4], pred_cls, gt_boxes_t, gt_cls_t,
                                        self.iou_thresholds)
        else:
            correct = match_by_iou(iou, pred_t[:, 4], pred_cls, gt_cls_t, self.iou_thresholds)
        self._correct.append(correct)
        self._conf.append(pred_t[:, 4].numpy().astype(np.float64))
        self._pred_cls.append(pred_cls.numpy())
        labels = gt_cls_t.numpy()
        labels = labels[(labels >= 0) & (labels < self.nc)]
        self.instances += np.bincount(labels, minlength=self.nc)
        self.images[np.unique(labels)] += 1
        self.n_images += 1

    def compute(self) -> DetectionMetrics:
        """Per-class P, R, AP and curves over everything added so far."""
        nc, t = self.nc, len(self.iou_thresholds)
        correct = np.concatenate(self._correct) if self._correct else np.zeros((0, t), dtype=bool)
        conf = np.concatenate(self._conf) if self._conf else np.zeros(0)
        pred_cls = np.concatenate(self._pred_cls) if self._pred_cls else np.zeros(0, dtype=np.int64)
        order = np.argsort(-conf, kind="stable")
        correct, conf, pred_cls = correct[order], conf[order], pred_cls[order]

        conf_grid = np.linspace(0.0, 1.0, CURVE_POINTS)
        px = np.linspace(0.0, 1.0, CURVE_POINTS)
        py = np.zeros((nc, CURVE_POINTS))
        p_curve = np.zeros((nc, CURVE_POINTS))
        r_curve = np.zeros((nc, CURVE_POINTS))
        ap_per_iou = np.full((nc, t), np.nan)
        has_gt = self.instances > 0
        for c in np.nonzero(has_gt)[0]:
            sel = pred_cls == c
            tp = correct[sel]
            if not len(tp):
                ap_per_iou[c] = 0.0
                continue
            tpc = np.cumsum(tp, 0)
            fpc = np.cumsum(~tp, 0)
            recall = tpc / self.instances[c]  # [k, T]
            precision = tpc / (tpc + fpc)
            # Curves against a confidence threshold x: the predictions kept are those with conf >= x.
            kept = np.searchsorted(-conf[sel], -conf_grid, side="right")  # [1000] count kept
            r_curve[c] = np.where(kept > 0, recall[np.maximum(kept - 1, 0), 0], 0.0)
            p_curve[c] = np.where(kept > 0, precision[np.maximum(kept - 1, 0), 0], 1.0)
            for j in range(t):
                curve = interpolated_precision(recall[:, j], precision[:, j], REC_THRESHOLDS)
                ap_per_iou[c, j] = curve.mean()
            py[c] = interpolated_precision(recall[:, 0], precision[:, 0], px)

        f1_curve = 2 * p_curve * r_curve / (p_curve + r_curve + 1e-16)
        if has_gt.any():
            best = int(f1_curve[has_gt].mean(0).argmax())
        else:
            best = 0
        p = np.where(has_gt, p_curve[:, best], 0.0)
        r = np.where(has_gt, r_curve[:, best], 0.0)
        return DetectionMetrics(
            p=p,
            r=r,
            ap50=ap_per_iou[:, 0].copy() if t else np.full(nc, np.nan),
            ap=ap_per_iou.mean(1) if t else np.full(nc, np.nan),
            ap_per_iou=ap_per_iou,
            instances=self.instances.copy(),
            images=self.images.copy(),
            n_images=self.n_images,
            has_gt=has_gt,
            best_conf=float(conf_grid[best]),
            px=px,
            py=py,
            conf_grid=conf_grid,
            p_curve=p_curve,
            r_curve=r_curve,
            f1_curve=f1_curve,
        )


def format_class_table(names: Mapping[int, str] | Sequence[str], rows: Sequence[ClassRow],
                       extra: Mapping[str, np.ndarray] | None = None) -> str:
    """Aligned text table ``Class Images Instances P R mAP50 mAP50-95`` (plus ``extra`` columns).

    Args:
        names: class index -> name.
        rows: :class:`ClassRow` items; the ``all`` row (``cls=None``) is printed first, then the
            class rows in the given order. nan values print as ``-``.
        extra: more columns {header: [nc] per-class values}; the ``all`` row shows their mean over the
            classes with a value (e.g. the mask APs of the segment task).

    Returns:
        the table, one line per row plus the header, no trailing newline.
    """
    extra = dict(extra or {})
    ordered = [r for r in rows if r.cls is None] + [r for r in rows if r.cls is not None]
    labels = ["all" if r.cls is None else str(names[r.cls]) for r in ordered]
    width = max([len("Class"), *map(len, labels)]) + 2
    width = max(width, 22)
    columns = ("Images", "Instances", "P", "R", "mAP50", "mAP50-95", *extra)
    cw = max([11, *(len(h) + 2 for h in extra)])
    header = f"{'Class':>{width}}" + "".join(f"{h:>{11 if k < 6 else cw}}" for k, h in enumerate(columns))
    lines = [header]
    for label, row in zip(labels, ordered):
        nums = "".join(f"{_fmt(v):>11}" for v in (row.p, row.r, row.map50, row.map))
        more = "".join(f"{_fmt(_column_value(v, row.cls)):>{cw}}" for v in extra.values())
        lines.append(f"{label:>{width}}{row.images:>11d}{row.instances:>11d}{nums}{more}")
    return "\n".join(lines)


def _column_value(values: np.ndarray, cls: int | None) -> float:
    """A per-class column's entry for class ``cls``, or its mean over classes with a value (the ``all`` row)."""
    v = np.asarray(values, np.float64)
    if cls is not None:
        return float(v[cls])
    finite = v[np.isfinite(v)]
    return float(finite.mean()) if finite.size else float("nan")


def _fmt(v: float) -> str:
    return "-" if v is None or not np.isfinite(v) else f"{v:.3f}"
