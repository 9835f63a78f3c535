"""Pure tensor functions: box conversions, IoU, anchor points, NMS."""

from mirrordet.ops.anchors import bbox2dist, dist2bbox, make_anchors
from mirrordet.ops.boxes import clip_boxes, scale_boxes, xywh2xyxy, xywhn2xyxy, xyxy2xywh, xyxy2xywhn
from mirrordet.ops.iou import bbox_iou
from mirrordet.ops.nms import non_max_suppression

__all__ = [
    "bbox2dist", "bbox_iou", "clip_boxes", "dist2bbox", "make_anchors", "non_max_suppression",
    "scale_boxes", "xywh2xyxy", "xywhn2xyxy", "xyxy2xywh", "xyxy2xywhn",
]
