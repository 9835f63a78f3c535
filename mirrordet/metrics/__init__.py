"""mirrordet.metrics: COCO evaluation, per-class detection statistics, confusion matrix."""

from mirrordet.metrics.coco_eval import CocoResult, coco_ground_truth, evaluate_coco, predictions_to_coco
from mirrordet.metrics.confusion import ConfusionMatrix
from mirrordet.metrics.detection import (
    ClassRow,
    DetectionMetrics,
    DetectionStats,
    format_class_table,
    match_predictions,
)

__all__ = [
    "ClassRow", "CocoResult", "ConfusionMatrix", "DetectionMetrics", "DetectionStats", "coco_ground_truth",
    "evaluate_coco", "format_class_table", "match_predictions", "predictions_to_coco",
]
