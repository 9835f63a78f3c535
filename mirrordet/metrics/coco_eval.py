"""COCO-exact box and mask evaluation through pycocotools.

The ground truth and detections are plain COCO-format Python objects, so the same numbers can
be recomputed by anyone from the written ``predictions.json`` and the ground-truth JSON with an
unmodified ``COCOeval``. Detection boxes keep full float precision for that reason.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from mirrordet.utils.errors import MirrordetError


@dataclass
class CocoResult:
    """Outcome of :func:`evaluate_coco`.

    Attributes:
        stats: [12] the standard COCOeval summary numbers (AP, AP50, AP75, APs, APm, APl, AR1,
            AR10, AR100, ARs, ARm, ARl); -1 where COCO has nothing to average (e.g. no small boxes).
        summary_text: the 12 lines printed by ``COCOeval.summarize()``.
        category_ids: category ids in the order of the ground-truth ``categories`` list
            (= class index order when built by :func:`coco_ground_truth`).
        ap50: [K] AP at IoU 0.50 per category (areaRng all, maxDets 100); nan without ground truth.
        ap: [K] AP averaged over IoU 0.50:0.95 per category; nan without ground truth.
        has_gt: [K] bool, False for categories with no ground-truth box (their AP is nan).
    """

    stats: np.ndarray
    summary_text: str
    category_ids: list[int] = field(default_factory=list)
    ap50: np.ndarray = field(default_factory=lambda: np.zeros(0))
    ap: np.ndarray = field(default_factory=lambda: np.zeros(0))
    has_gt: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))

    @property
    def map(self) -> float:
        """AP@[.50:.95] over all categories (``stats[0]``)."""
        return float(self.stats[0])

    @property
    def map50(self) -> float:
        """AP@.50 over all categories (``stats[1]``)."""
        return float(self.stats[1])


def coco_ground_truth(
    images: Sequence[tuple],
    annotations: Sequence[tuple[np.ndarray, np.ndarray]],
    category_ids: Sequence[int],
    names: Mapping[int, str] | Sequence[str],
) -> dict[str, Any]:
    """Build a COCO-format ground-truth dict.

    Args:
        images: per image ``(image_id, height, width)`` (optionally a 4th item, the file name).
        annotations: per image (same order) ``(cls [m] int class indices, boxes [m, 4] xyxy pixels)``.
        category_ids: COCO category id of each class index (``category_ids[c]``).
        names: class index -> name.

    Returns:
        dict with ``info``, ``licenses``, ``images``, ``annotations`` (ids from 1, bbox
        [x, y, w, h], area = w * h, iscrowd 0) and ``categories`` in class index order.
    """
    if len(images) != len(annotations):
        raise MirrordetError(
            f"coco_ground_truth got {len(images)} images but {len(annotations)} annotation sets"
        )
    nc = len(category_ids)
    image_list, ann_list = [], []
    for image, (cls, boxes) in zip(images, annotations):
        image_id, h, w = image[0], image[1], image[2]
        entry = {"id": int(image_id), "height": int(h), "width": int(w)}
        if len(image) > 3:
            entry["file_name"] = str(image[3])
        image_list.append(entry)
        cls = np.asarray(cls, dtype=np.int64).reshape(-1)
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        if len(cls) != len(boxes):
            raise MirrordetError(f"image {image_id}: {len(cls)} class labels but {len(boxes)} boxes")
        if len(cls) and (cls.min() < 0 or cls.max() >= nc):
            raise MirrordetError(f"image {image_id}: class index outside 0..{nc - 1}")
        for c, (x1, y1, x2, y2) in zip(cls.tolist(), boxes.tolist()):
            bw, bh = x2 - x1, y2 - y1
            ann_list.append(
                {
                    "id": len(ann_list) + 1,  # COCOeval treats id 0 as "unmatched": start at 1
                    "image_id": int(image_id),
                    "category_id": int(category_ids[c]),
                    "bbox": [x1, y1, bw, bh],
                    "area": bw * bh,
                    "iscrowd": 0,
                }
            )
    categories = [{"id": int(cid), "name": str(names[i])} for i, cid in enumerate(category_ids)]
    return {
        "info": {"description": "mirrordet ground truth"},
        "licenses": [],
        "images": image_list,
        "annotations": ann_list,
        "categories": categories,
    }


def ground_truth_from_coco(d: Mapping[str, Any], image_ids: Sequence[int]) -> dict[str, Any]:
    """The official ground truth of ``image_ids``: a COCO instances file's own records.

    Images, annotations and categories are taken from ``d`` as they are (ids, ``bbox``, ``area``
    from the segmentation, ``iscrowd``), so COCOeval scores crowd regions and area ranges as the
    official protocol does. Only what COCOeval cannot read is completed or left out: a missing
    ``area`` becomes ``w * h``, a missing ``iscrowd`` 0, a missing annotation id a fresh one;
    annotations with a malformed bbox or an unknown category (skipped in training too) are dropped.

    Args:
        d: a loaded COCO instances dict (checked by ``mirrordet.data.coco_schema.check_coco_tables``).
        image_ids: the images evaluated (those whose file could be read).

    Returns:
        A ground-truth dict for :func:`evaluate_coco`, categories sorted by id (= class order).
    """
    keep = {int(i) for i in image_ids}
    categories = sorted(({"id": int(c["id"]), "name": str(c.get("name", c["id"]))} for c in d["categories"]),
                        key=lambda c: c["id"])
    known = {c["id"] for c in categories}
    images = [dict(im) for im in d["images"] if im["id"] in keep]
    taken = {a["id"] for a in d["annotations"] if isinstance(a.get("id"), int)}
    next_id = max([0, *taken]) + 1
    anns = []
    for a in d["annotations"]:
        box = a.get("bbox")
        if a.get("image_id") not in keep or a.get("category_id") not in known:
            continue
        if not (isinstance(box, (list, tuple)) and len(box) == 4 and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in box)):
            continue
        entry = {**a, "bbox": [float(v) for v in box]}
        if not isinstance(entry.get("id"), int):
            entry["id"], next_id = next_id, next_id + 1
        if not isinstance(entry.get("area"), (int, float)):
            entry["area"] = float(box[2]) * float(box[3])
        entry.setdefault("iscrowd", 0)
        anns.append(entry)
    return {"info": dict(d.get("info") or {"description": "mirrordet ground truth (from the COCO file)"}),
            "licenses": list(d.get("licenses") or []), "images": images, "annotations": anns,
            "categories": categories}


def predictions_to_coco(
    image_id: int,
    boxes_xyxy: np.ndarray,
    scores: np.ndarray,
    cls: np.ndarray,
    category_ids: Sequence[int],
) -> list[dict[str, Any]]:
    """Detections of one image -> COCO result entries (full float precision, no rounding).

    Args:
        image_id: COCO image id.
        boxes_xyxy: [n, 4] xyxy pixels of the original image.
        scores: [n] confidences.
        cls: [n] class indices (mapped through ``category_ids``).
        category_ids: COCO category id of each class index.

    Returns:
        list of ``{"image_id", "category_id", "bbox": [x, y, w, h], "score"}``.
    """
    boxes = _as_numpy(boxes_xyxy).astype(np.float64).reshape(-1, 4)
    scores = _as_numpy(scores).astype(np.float64).reshape(-1)
    classes = _as_numpy(cls).reshape(-1).astype(np.int64)
    out = []
    for (x1, y1, x2, y2), s, c in zip(boxes.tolist(), scores.tolist(), classes.tolist()):
        out.append(
            {
                "image_id": int(image_id),
                "category_id": int(category_ids[c]),
                "bbox": [x1, y1, x2 - x1, y2 - y1],
                "score": s,
            }
        )
    return out


def evaluate_coco(gt: Mapping[str, Any], dets: Sequence[Mapping[str, Any]], iou_type: str = "bbox") -> CocoResult:
    """Run pycocotools' evaluation of boxes (``iou_type="bbox"``) or masks (``"segm"``).

    Args:
        gt: COCO-format ground-truth dict (e.g. from :func:`coco_ground_truth`); not modified. ``"segm"`` needs
            a ``segmentation`` in every annotation.
        dets: COCO result entries (e.g. from :func:`predictions_to_coco`); not modified. May be empty. ``"segm"``
            needs RLE ``segmentation`` entries and no ``bbox`` (pycocotools would read the box instead).
        iou_type: ``"bbox"`` or ``"segm"``.

    Returns:
        :class:`CocoResult` with the 12 summary numbers, the printed summary and per-category AP.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    noise = io.StringIO()  # pycocotools prints progress lines; keep them out of the log
    with contextlib.redirect_stdout(noise):
        coco_gt = COCO()
        coco_gt.dataset = {k: (list(v) if isinstance(v, list) else v) for k, v in gt.items()}
        coco_gt.dataset["annotations"] = [dict(a) for a in gt.get("annotations", [])]  # COCOeval adds keys
        coco_gt.dataset.setdefault("categories", [])
        coco_gt.createIndex()
        coco_dt = _load_results(coco_gt, dets)
        evaluator = COCOeval(coco_gt, coco_dt, iouType=iou_type)
        evaluator.evaluate()
        evaluator.accumulate()
    summary = io.StringIO()
    with contextlib.redirect_stdout(summary):
        evaluator.summarize()

    cat_ids = [int(c["id"]) for c in gt.get("categories", [])]
    order = {cid: k for k, cid in enumerate(evaluator.params.catIds)}
    precision = evaluator.eval["precision"]  # [T, R, K, A, M]
    area_all = list(evaluator.params.areaRngLbl).index("all")
    max_det = list(evaluator.params.maxDets).index(100)
    ap50 = np.full(len(cat_ids), np.nan)
    ap = np.full(len(cat_ids), np.nan)
    for i, cid in enumerate(cat_ids):
        k = order[cid]
        p = precision[:, :, k, area_all, max_det]  # [T, R]
        if (p > -1).any():
            ap[i] = float(np.mean(p[p > -1]))
        p50 = p[0]
        if (p50 > -1).any():
            ap50[i] = float(np.mean(p50[p50 > -1]))
    return CocoResult(
        stats=np.asarray(evaluator.stats, dtype=np.float64).copy(),
        summary_text=summary.getvalue().rstrip("\n"),
        category_ids=cat_ids,
        ap50=ap50,
        ap=ap,
        has_gt=~np.isnan(ap),
    )


def _load_results(coco_gt: Any, dets: Sequence[Mapping[str, Any]]) -> Any:
    """``coco_gt.loadRes`` on copies of ``dets``; an empty list gives an empty result set."""
    from pycocotools.coco import COCO

    known = set(coco_gt.getImgIds())
    unknown = {int(d["image_id"]) for d in dets} - known
    if unknown:
        raise MirrordetError(
            f"{len(unknown)} detection image ids are not in the ground truth (e.g. {sorted(unknown)[:5]}); "
            "use the image ids of the ground-truth dict"
        )
    if len(dets):
        return coco_gt.loadRes([dict(d) for d in dets])  # loadRes adds keys to each entry
    empty = COCO()
    empty.dataset = {
        "images": list(coco_gt.dataset["images"]),
        "categories": list(coco_gt.dataset.get("categories", [])),
        "annotations": [],
    }
    empty.createIndex()
    return empty


def _as_numpy(x: Any) -> np.ndarray:
    """Tensor or array-like -> numpy array (on CPU)."""
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    return np.asarray(x)
