"""Segmentation validator: the detection validator plus COCO ``segm`` AP of the predicted masks.

Boxes are scored exactly as in the detect task. Each detection's mask (bool, network input) is cut out of
the letterbox, resized to the original image, RLE-encoded with pycocotools and stored in its
predictions.json entry beside the box, as COCO results files do. The masks are scored by pycocotools'
COCOeval with ``iouType="segm"`` against ground truth with outlines: a COCO JSON split's own records
(polygons or RLE), or for YOLO-seg data ground truth built from the label polygons (area = mask area, as in
COCO). ground_truth.json holds that ground truth, so both APs can be recomputed from the written files.
Mask precision and recall (IoU 0.5, at the confidence of the best mean F1, as the box P and R) match the same
RLE masks to the non-crowd ground-truth outlines by mask IoU (pycocotools).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from mirrordet.data.dataset_seg import SegmentationDataset
from mirrordet.engine.validator import DetectionValidator, ExtraMetrics, ground_truth_of
from mirrordet.metrics.coco_eval import evaluate_coco
from mirrordet.metrics.detection import DetectionMetrics, DetectionStats
from mirrordet.ops.detections import Detections
from mirrordet.ops.masks import encode_rle, scale_masks

MASK_METRIC_KEYS = ("metrics/precision(M)", "metrics/recall(M)", "metrics/mAP50(M)", "metrics/mAP50-95(M)")


def segment_ground_truth(dataset: SegmentationDataset) -> dict[str, Any]:
    """The COCO ground truth with outlines the split is scored against (boxes and masks alike).

    A COCO JSON split: the file's own records. YOLO-seg data: per label row its box and its polygon in
    original pixels, ``area`` the polygon's rasterized area (pycocotools), so area ranges are COCO's.
    """
    from pycocotools import mask as mask_utils

    gt = ground_truth_of(dataset)
    if dataset.annotations_file is not None:
        return gt
    polygons = [(r["shape"], inst) for r in dataset.records for inst in r["segments"]]
    for ann, ((h, w), parts) in zip(gt["annotations"], polygons):  # built from the labels, in the records' order
        ann["segmentation"] = [(np.asarray(p, np.float64).reshape(-1, 2) * (w, h)).reshape(-1).tolist() for p in parts]
        ann["area"] = float(mask_utils.area(mask_utils.merge(mask_utils.frPyObjects(ann["segmentation"], h, w))))
    return gt


class SegmentationValidator(DetectionValidator):
    """Validates segmentation models: box metrics (as the detect task) plus mask AP.

    Args: as :class:`~mirrordet.engine.validator.DetectionValidator` (``dataset`` a SegmentationDataset).
    """

    def ground_truth(self) -> dict[str, Any]:
        """The ground truth with outlines (:func:`segment_ground_truth`), for boxes and masks alike."""
        return segment_ground_truth(self.dataset)

    def add_image(self, found: Detections, batch: Mapping[str, Any], si: int, entries: list[dict[str, Any]]) -> None:
        """Store each detection's mask, at the original image size, as COCO RLE in its result entry."""
        if not entries:
            return
        masks = scale_masks(found.masks.cpu(), batch["ratio_pad"][si], batch["ori_shape"][si])
        for entry, rle in zip(entries, encode_rle(masks)):
            entry["segmentation"] = rle

    def extra_metrics(self, dets: list[dict[str, Any]]) -> ExtraMetrics:
        """COCO ``segm`` AP of the masks: mAP50(M), mAP50-95(M), per-class mask APs and the 12-line summary."""
        segm = evaluate_coco(self.gt, [{k: v for k, v in d.items() if k != "bbox"} for d in dets], iou_type="segm")
        map50, map_ = max(segm.map50, 0.0), max(segm.map, 0.0)
        pr = self.mask_precision_recall(dets)
        p, r = np.where(pr.has_gt, pr.p, np.nan), np.where(pr.has_gt, pr.r, np.nan)  # '-' for classes without GT
        per_class = {str(self.names[c]): {"mAP50": None if np.isnan(a50) else float(a50),
                                          "mAP50-95": None if np.isnan(a) else float(a)}
                     for c, (a50, a) in enumerate(zip(segm.ap50, segm.ap))}
        return ExtraMetrics(
            metrics=dict(zip(MASK_METRIC_KEYS, (pr.mp, pr.mr, map50, map_))),
            fitness=0.1 * map50 + 0.9 * map_,
            class_columns={"Mask P": p, "Mask R": r, "Mask mAP50": segm.ap50, "Mask mAP50-95": segm.ap},
            summary_text="Masks (COCO segm):\n" + segm.summary_text,
            payload={"coco_stats_segm": segm.stats.tolist(), "per_class_segm": per_class},
        )

    def mask_precision_recall(self, dets: list[dict[str, Any]]) -> DetectionMetrics:
        """Mask precision and recall (``p``, ``r``, ``mp``, ``mr`` of the result): each image's RLE masks matched to
        its non-crowd ground-truth outlines by mask IoU >= 0.5, scored as the box P and R."""
        from pycocotools import mask as mask_utils

        stats = DetectionStats(len(self.names), iou_thresholds=(0.5,))
        cls_of = {c: i for i, c in enumerate(self.dataset.category_ids)}
        found: dict[Any, list[dict[str, Any]]] = {}
        for d in dets:
            found.setdefault(d["image_id"], []).append(d)
        truth: dict[Any, list[dict[str, Any]]] = {}
        for a in self.gt["annotations"]:
            if not a.get("iscrowd", 0) and a["category_id"] in cls_of:
                truth.setdefault(a["image_id"], []).append(a)
        for image in self.gt["images"]:
            h, w = int(image["height"]), int(image["width"])
            dts, gts = found.get(image["id"], []), truth.get(image["id"], [])
            iou = np.zeros((len(dts), len(gts)))
            if dts and gts:
                dt_rles = [_rle(d["segmentation"], h, w) for d in dts]
                gt_rles = [_rle(a["segmentation"], h, w) for a in gts]
                iou = np.asarray(mask_utils.iou(dt_rles, gt_rles, [0] * len(gts)), np.float64).reshape(len(dts), -1)
            pred = np.array([[0.0, 0.0, 0.0, 0.0, d["score"], cls_of[d["category_id"]]] for d in dts]).reshape(-1, 6)
            stats.update(pred, [cls_of[a["category_id"]] for a in gts], np.zeros((len(gts), 4)), iou=iou)
        return stats.compute()


def _rle(segmentation: Any, h: int, w: int) -> dict[str, Any]:
    """One COCO ``segmentation`` (polygons, uncompressed or compressed RLE, ``counts`` str or bytes) as the compressed
    RLE pycocotools takes."""
    from pycocotools import mask as mask_utils

    if isinstance(segmentation, list):  # polygons: one RLE per part, merged
        return mask_utils.merge(mask_utils.frPyObjects(segmentation, h, w))
    if isinstance(segmentation.get("counts"), list):  # uncompressed RLE
        return mask_utils.frPyObjects(segmentation, h, w)
    counts = segmentation["counts"]
    return {"size": segmentation["size"], "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
