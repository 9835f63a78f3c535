"""COCO box AP over a resampled set of images: the per-image bootstrap of one validation run.

pycocotools' ``COCOeval.evaluate()`` matches detections to ground truth image by image (``evalImgs``);
``accumulate()`` then pools the images. :class:`ImageEvals` keeps the per-image matches of the
``all`` area range at the largest ``maxDets`` and pools them again for any multiset of images (an image
drawn twice counts twice), with ``accumulate``'s arithmetic: detections sorted by score (stable),
precision made monotone, read at the 101 recall thresholds, categories without ground truth left out.
For the original image set the result equals ``COCOeval.stats[0]`` / ``stats[1]`` (tested).
"""

from __future__ import annotations

import contextlib
import io
from typing import Any, Mapping, Sequence

import numpy as np

from mirrordet.metrics.detection import interpolated_precision


class ImageEvals:
    """Per-image, per-category COCO matches of one set of detections.

    Args:
        gt: COCO ground-truth dict (``images``, ``annotations``, ``categories``).
        dets: COCO result list (``image_id``, ``category_id``, ``bbox`` xywh, ``score``).

    Attributes:
        image_ids: [N] the evaluated image ids (sorted, as COCOeval orders them).
    """

    def __init__(self, gt: Mapping[str, Any], dets: Sequence[Mapping[str, Any]]) -> None:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval

        with contextlib.redirect_stdout(io.StringIO()):
            coco_gt = COCO()
            coco_gt.dataset = dict(gt)
            coco_gt.createIndex()
            coco_dt = coco_gt.loadRes(list(dets)) if dets else COCO()
            ev = COCOeval(coco_gt, coco_dt, "bbox")
            ev.evaluate()
        p = ev.params
        self.image_ids = list(p.imgIds)
        self.iou_thrs, self.rec_thrs, self.max_det = p.iouThrs, p.recThrs, p.maxDets[-1]
        n_img, n_area = len(p.imgIds), len(p.areaRng)
        all_area = [tuple(a) for a in p.areaRng].index(tuple(p.areaRng[0]))
        # per category: per image (scores [D], matched [T, D] bool, ignored [T, D] bool, gt count)
        self._cats: list[list[tuple[np.ndarray, np.ndarray, np.ndarray, int]]] = []
        for k in range(len(p.catIds)):
            per_image = []
            for i in range(n_img):
                e = ev.evalImgs[k * n_area * n_img + all_area * n_img + i]
                if e is None:
                    per_image.append((np.zeros(0), np.zeros((len(self.iou_thrs), 0), bool),
                                      np.zeros((len(self.iou_thrs), 0), bool), 0))
                    continue
                d = self.max_det
                per_image.append((np.asarray(e["dtScores"][:d], float), np.asarray(e["dtMatches"][:, :d]) != 0,
                                  np.asarray(e["dtIgnore"][:, :d], bool), int((np.asarray(e["gtIgnore"]) == 0).sum())))
            self._cats.append(per_image)

    def ap(self, counts: np.ndarray | None = None) -> tuple[float, float]:
        """(AP@[.50:.95], AP@.50) over the images drawn ``counts[i]`` times each (None: every image once)."""
        n_img = len(self.image_ids)
        counts = np.ones(n_img, int) if counts is None else np.asarray(counts, int)
        order = np.repeat(np.arange(n_img), counts)
        per_cat = []
        for per_image in self._cats:
            npig = sum(per_image[i][3] for i in order)
            if npig == 0:
                continue
            scores = np.concatenate([per_image[i][0] for i in order]) if len(order) else np.zeros(0)
            inds = np.argsort(-scores, kind="mergesort")
            tps = np.concatenate([per_image[i][1] for i in order], 1)[:, inds] if len(order) else np.zeros((10, 0), bool)
            ign = np.concatenate([per_image[i][2] for i in order], 1)[:, inds] if len(order) else np.zeros((10, 0), bool)
            fps = ~tps & ~ign
            tps = tps & ~ign
            per_cat.append(self._precision(np.cumsum(tps, 1, dtype=float), np.cumsum(fps, 1, dtype=float), npig))
        if not per_cat:
            return -1.0, -1.0
        q = np.stack(per_cat)  # [K, T, R]
        return float(q.mean()), float(q[:, 0].mean())

    def _precision(self, tp: np.ndarray, fp: np.ndarray, npig: int) -> np.ndarray:
        """[T, R] interpolated precision at the recall thresholds (accumulate's rule)."""
        out = np.zeros((len(self.iou_thrs), len(self.rec_thrs)))
        for t in range(len(self.iou_thrs)):
            out[t] = interpolated_precision(tp[t] / npig, tp[t] / (fp[t] + tp[t] + np.spacing(1)), self.rec_thrs)
        return out


def paired_image_bootstrap(pairs: Sequence[tuple[ImageEvals, ImageEvals]], n: int = 1000, seed: int = 0,
                           metric: int = 0) -> np.ndarray:
    """[n] replicates of the mean over ``pairs`` of (model AP - baseline AP), every run of a replicate
    scored on the same resampled val images. ``metric``: 0 = AP@[.50:.95], 1 = AP@.50.

    Raises:
        ValueError: the runs were not evaluated on the same images.
    """
    ids = pairs[0][0].image_ids
    if any(a.image_ids != ids or b.image_ids != ids for a, b in pairs):
        raise ValueError("the runs were validated on different images")
    rng = np.random.default_rng(seed)
    out = np.empty(n)
    for j in range(n):
        counts = np.bincount(rng.integers(0, len(ids), len(ids)), minlength=len(ids))
        out[j] = np.mean([a.ap(counts)[metric] - b.ap(counts)[metric] for a, b in pairs])
    return out
