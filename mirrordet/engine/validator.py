"""Detection validator: NMS -> original-image boxes -> COCOeval (pycocotools) + class table.

One code path serves `mirrordet val` and the per-epoch validation of training. mAP50 and
mAP50-95 (overall and per class) are pycocotools COCOeval's own numbers, computed on the COCO
file's own records for COCO JSON splits (:func:`ground_truth_of`) and on ground truth built from
the labels for YOLO data; precision/recall in the class table are taken at the confidence
that maximizes the mean F1 over classes (IoU 0.5).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from tqdm import tqdm

from mirrordet.data.coco import read_coco_json
from mirrordet.data.dataset import DetectionDataset
from mirrordet.data.preprocess import to_unit_float
from mirrordet.metrics.coco_eval import coco_ground_truth, evaluate_coco, ground_truth_from_coco, predictions_to_coco
from mirrordet.metrics.confusion import ConfusionMatrix
from mirrordet.metrics.detection import DetectionStats, format_class_table
from mirrordet.nn.graph import ModelGraph
from mirrordet.ops.boxes import scale_boxes
from mirrordet.ops.detections import Detections
from mirrordet.ops.nms import NMSSettings
from mirrordet.plotting.val_batch import MAX_IMAGES, PLOT_CONF
from mirrordet.utils.files import atomic_write_text
from mirrordet.utils.log import LOGGER

METRIC_KEYS = ("metrics/precision", "metrics/recall", "metrics/mAP50", "metrics/mAP50-95")


@dataclass
class ExtraMetrics:
    """What a task's validator adds to the box metrics.

    Attributes:
        metrics: extra ``metrics/...`` keys (in the returned metrics, results.csv and metrics.json).
        fitness: added to the box fitness (model selection).
        class_columns: extra per-class columns for the class table: {column: [nc] values}.
        summary_text: an extra COCOeval summary for the log.
        payload: extra top-level entries of metrics.json.
    """

    metrics: dict[str, float] = field(default_factory=dict)
    fitness: float = 0.0
    class_columns: dict[str, np.ndarray] = field(default_factory=dict)
    summary_text: str = ""
    payload: dict[str, Any] = field(default_factory=dict)


def fitness(metrics: Mapping[str, float]) -> float:
    """Model selection score: 0.1 * mAP50 + 0.9 * mAP50-95."""
    return 0.1 * metrics["metrics/mAP50"] + 0.9 * metrics["metrics/mAP50-95"]


def ground_truth_of(dataset: DetectionDataset) -> dict[str, Any]:
    """The COCO ground truth the split is scored against.

    A COCO JSON split is scored against that file's own records for the evaluated images (ids,
    areas, crowd regions as ``iscrowd=1``): the official protocol. YOLO-format data gets ground truth
    built from its labels (boxes' own areas, no crowd regions).
    """
    ids = [dataset.image_id(i) for i in range(len(dataset))]
    if dataset.annotations_file is not None:
        return ground_truth_from_coco(read_coco_json(dataset.annotations_file), ids)
    gt = coco_ground_truth([(ids[i], *dataset.records[i]["shape"]) for i in range(len(dataset))],
                           [dataset.ground_truth(i) for i in range(len(dataset))], dataset.category_ids,
                           dataset.names)
    for i in range(len(dataset)):  # VOC's difficult objects: ignore regions, as COCO's crowd regions
        for c, (x1, y1, x2, y2) in zip(dataset.records[i].get("difficult_cls", []), dataset.crowd_boxes(i).tolist()):
            gt["annotations"].append({"id": len(gt["annotations"]) + 1, "image_id": ids[i], "iscrowd": 1,
                                      "category_id": int(dataset.category_ids[int(c)]), "bbox": [x1, y1, x2 - x1, y2 - y1],
                                      "area": (x2 - x1) * (y2 - y1)})
    return gt


class DetectionValidator:
    """Validates detection models on one dataset split.

    Args:
        dataset: the split (letterbox only, ``augment=False``).
        loader: a DataLoader over ``dataset`` (``collate_detection`` batches).
        conf: score threshold before NMS (0.001 keeps the PR curve complete).
        iou: NMS IoU threshold. max_det: detections kept per image.
        save_dir: where predictions.json, metrics.json and plots go (None = nothing written).
    """

    def __init__(self, dataset: DetectionDataset, loader: Any, conf: float = 0.001, iou: float = 0.7,
                 max_det: int = 300, save_dir: Path | None = None) -> None:
        self.dataset, self.loader = dataset, loader
        self.conf, self.iou, self.max_det = conf, iou, max_det
        self.save_dir = save_dir
        self.names = dataset.names
        self.index_of = {r["im_file"]: i for i, r in enumerate(dataset.records)}
        self.gt = self.ground_truth()

    @torch.inference_mode()
    def __call__(self, model: ModelGraph, device: torch.device, half: bool = False, verbose: bool = True,
                 plots: bool = True, save_json: bool = True, channels_last: bool = False) -> dict[str, Any]:
        """Run the model over the split; returns metrics (keys ``METRIC_KEYS``, ``fitness``, ``speed``).

        ``channels_last`` feeds the images NHWC (for a model prepared channels-last, see
        :func:`mirrordet.engine.inference.prepare_model`)."""
        was_training = model.training
        model.eval()
        nc = len(self.names)
        # P, R and the PR curve are taken at IoU 0.5; the APs at 0.50:0.95 are COCOeval's (not computed twice)
        stats, confusion, dets = DetectionStats(nc, iou_thresholds=(0.5,)), ConfusionMatrix(nc), []
        times = np.zeros(3)
        bar = tqdm(self.loader, desc="val", leave=False, disable=not verbose, dynamic_ncols=True)
        first = None  # (batch, NMS output) of the first batch, for val_batch0.png
        per_image: dict[int, np.ndarray] = {}  # VOC data: [n, 6] original-pixel detections per dataset index
        for batch in bar:
            t0 = time.perf_counter()
            img = batch["img"].to(device, non_blocking=True)
            img = to_unit_float(img, half)
            if channels_last:
                img = img.contiguous(memory_format=torch.channels_last)
            t1 = time.perf_counter()
            preds = model(img)
            t2 = time.perf_counter()
            # the head decodes its own output, one image at a time (masks exist for one image at once); every class
            # whose score passes conf is kept (multi-label), as COCO evaluation expects
            nms = NMSSettings(self.conf, self.iou, self.max_det, multi_label=True)
            shown: list[Detections] = []  # the first batch's drawn detections, for val_batch0.png
            for si, found in enumerate(model.head.postprocess_each(preds, nms)):
                det = found.rows().cpu().clone()
                if first is None and plots and si < MAX_IMAGES:
                    shown.append(found.select(found.scores >= PLOT_CONF).to("cpu"))
                i = self.index_of[batch["im_file"][si]]
                scale_boxes(det[:, :4], batch["resized_shape"][si], batch["ori_shape"][si], batch["ratio_pad"][si])
                gt_cls, gt_boxes = self.dataset.ground_truth(i)
                stats.update(det, gt_cls, gt_boxes)
                if self.dataset.source_format == "voc":
                    per_image[i] = det.numpy()
                confusion.update(det, gt_cls, gt_boxes)
                entries = predictions_to_coco(self.dataset.image_id(i), det[:, :4].numpy(), det[:, 4].numpy(),
                                              det[:, 5].numpy().astype(np.int64), self.dataset.category_ids)
                self.add_image(found, batch, si, entries)
                dets += entries
            t3 = time.perf_counter()
            times += (t1 - t0, t2 - t1, t3 - t2)
            first = (batch, shown) if first is None and plots else first
        model.train(was_training)
        if first is not None and self.save_dir is not None:
            from mirrordet.plotting.val_batch import plot_val_batch

            batch0, shown0 = first
            masks0 = [d.masks for d in shown0] if shown0 and shown0[0].masks is not None else None
            plot_val_batch(batch0, [d.rows() for d in shown0], self.names, self.save_dir / "val_batch0.png",
                           conf=PLOT_CONF, pred_masks=masks0)
        n_img = max(len(self.dataset), 1)
        speed = dict(zip(("preprocess", "inference", "postprocess"), (1000 * times / n_img).tolist()))

        coco = evaluate_coco(self.gt, dets)
        det_metrics = stats.compute()
        rows = det_metrics.class_rows(ap50=coco.ap50, ap=coco.ap)
        metrics: dict[str, Any] = {
            "metrics/precision": det_metrics.mp, "metrics/recall": det_metrics.mr,
            "metrics/mAP50": coco.map50 if coco.map50 >= 0 else 0.0,
            "metrics/mAP50-95": coco.map if coco.map >= 0 else 0.0,
        }
        extra = self.extra_metrics(dets)
        metrics.update(extra.metrics)
        metrics["fitness"] = fitness(metrics) + extra.fitness
        metrics["speed"] = speed
        voc = self._voc(per_image) if self.dataset.source_format == "voc" else None
        if voc is not None:
            metrics["voc"] = voc
        table = format_class_table(self.names, rows if verbose else rows[:1], extra.class_columns)
        LOGGER.info(table)
        if voc is not None:
            LOGGER.info(f"VOC (IoU 0.5, difficult ignored): mAP {voc['map07']:.4f} (VOC07 11-point), "
                        f"{voc['map']:.4f} (VOC2010+ area)")
        if verbose:
            LOGGER.info(coco.summary_text)
            if extra.summary_text:
                LOGGER.info(extra.summary_text)
            LOGGER.info("Speed: %.1fms preprocess, %.1fms inference, %.1fms postprocess per image" %
                        tuple(speed.values()))
        if self.save_dir is not None:
            self._save(metrics, rows, coco, det_metrics, confusion, dets, plots, save_json, extra)
        return metrics

    # ---- what a task adds (the segment task: masks) ---------------------------------------------
    def ground_truth(self) -> dict[str, Any]:
        """The COCO ground truth the split is scored against (:func:`ground_truth_of`)."""
        return ground_truth_of(self.dataset)

    def add_image(self, found: Detections, batch: Mapping[str, Any], si: int, entries: list[dict[str, Any]]) -> None:
        """Add to the COCO result ``entries`` of one image what this task predicts beyond boxes (nothing here).

        Args:
            found: the head's detections of image ``si`` of ``batch`` (network-input pixels).
            entries: its COCO result entries, one per detection, in the same order (changed in place).
        """

    def extra_metrics(self, dets: list[dict[str, Any]]) -> ExtraMetrics:
        """Metrics beyond the box metrics (none here)."""
        return ExtraMetrics()

    def _voc(self, per_image: dict[int, np.ndarray]) -> dict[str, Any]:
        """The VOC metric of the split (metrics/voc_eval.py): mAP VOC07 11-point and area, per class."""
        from mirrordet.metrics.voc_eval import voc_evaluate

        ds, gts = self.dataset, []
        for i in range(len(ds)):
            cls, boxes = ds.ground_truth(i)
            hard = np.asarray(ds.records[i].get("difficult_cls", np.zeros(0)), np.int64)
            gts.append({"boxes": np.concatenate([boxes, ds.crowd_boxes(i)]), "cls": np.concatenate([cls, hard]),
                        "difficult": np.r_[np.zeros(len(cls), bool), np.ones(len(hard), bool)]})
        dets = [per_image.get(i, np.zeros((0, 6))) for i in range(len(ds))]
        r = voc_evaluate(dets, gts, len(self.names))
        per_class = {str(self.names[c]): {"ap07": None if np.isnan(r.ap07[c]) else float(r.ap07[c]),
                                          "ap": None if np.isnan(r.ap[c]) else float(r.ap[c])} for c in range(len(self.names))}
        return {"map07": r.map07, "map": r.map, "per_class": per_class}

    def _save(self, metrics, rows, coco, det_metrics, confusion, dets, plots: bool, save_json: bool,
              extra: ExtraMetrics) -> None:
        d = self.save_dir
        d.mkdir(parents=True, exist_ok=True)
        per_class = {
            str(self.names[r.cls]): {"images": r.images, "instances": r.instances, "precision": r.p, "recall": r.r,
                                     "mAP50": None if np.isnan(r.map50) else r.map50,
                                     "mAP50-95": None if np.isnan(r.map) else r.map}
            for r in rows if r.cls is not None
        }
        payload = {k: metrics[k] for k in (*METRIC_KEYS, *extra.metrics, "fitness", "speed", "voc") if k in metrics}
        payload.update(coco_stats=coco.stats.tolist(), per_class=per_class, **extra.payload)
        atomic_write_text(d / "metrics.json", json.dumps(payload, indent=2))
        if save_json:
            atomic_write_text(d / "predictions.json", json.dumps(dets))
            atomic_write_text(d / "ground_truth.json", json.dumps(self.gt))
        if plots:
            from mirrordet.plotting.confusion import plot_confusion_matrix
            from mirrordet.plotting.pr_curve import plot_pr_curve

            plot_pr_curve(det_metrics.px, det_metrics.py, coco.ap50, self.names, d / "PR_curve.png")
            plot_confusion_matrix(confusion.matrix, self.names, d / "confusion_matrix.png")
            plot_confusion_matrix(confusion.matrix, self.names, d / "confusion_matrix_normalized.png", normalize=True)
