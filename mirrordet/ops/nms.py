"""Non-maximum suppression over decoded head outputs (torchvision.ops.batched_nms)."""

from __future__ import annotations

from typing import Sequence

import torch
import torchvision

from mirrordet.ops.boxes import xywh2xyxy


def non_max_suppression(
    prediction: torch.Tensor,
    conf_thres: float = 0.25,
    iou_thres: float = 0.7,
    classes: Sequence[int] | None = None,
    agnostic: bool = False,
    max_det: int = 300,
    max_nms: int = 30000,
    multi_label: bool = False,
) -> list[torch.Tensor]:
    """Per-image NMS of YOLO-style outputs.

    Args:
        prediction: [B, 4 + nc, A] with boxes as xywh pixels and per-class scores in [0, 1].
        conf_thres: minimum class score kept.
        iou_thres: IoU above which a lower-scored box of the same class is suppressed.
        classes: keep only these class indices.
        agnostic: suppress across classes.
        max_det: detections kept per image.
        max_nms: boxes handed to NMS at most (highest scores first).
        multi_label: a box may be kept for several classes whose score passes ``conf_thres``.

    Returns:
        list of B tensors [n, 6]: x1, y1, x2, y2 (pixels), score, class.
    """
    if not 0 <= conf_thres <= 1 or not 0 <= iou_thres <= 1:
        raise ValueError(f"conf_thres={conf_thres} and iou_thres={iou_thres} must be within [0, 1]")
    nc = prediction.shape[1] - 4
    pred = prediction.transpose(1, 2)  # [B, A, 4 + nc]
    output: list[torch.Tensor] = []
    for x in pred:
        boxes = xywh2xyxy(x[:, :4])
        scores_all = x[:, 4:]
        if multi_label and nc > 1:
            i, j = (scores_all > conf_thres).nonzero(as_tuple=True)
            boxes, scores, labels = boxes[i], scores_all[i, j], j
        else:
            scores, labels = scores_all.max(1)
            keep = scores > conf_thres
            boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        if classes is not None:
            keep = torch.isin(labels, torch.as_tensor(list(classes), device=labels.device))
            boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        if scores.numel() > max_nms:
            top = scores.topk(max_nms).indices
            boxes, scores, labels = boxes[top], scores[top], labels[top]
        if agnostic:
            keep = torchvision.ops.nms(boxes, scores, iou_thres)
        else:
            keep = torchvision.ops.batched_nms(boxes, scores, labels, iou_thres)
        keep = keep[:max_det]
        output.append(torch.cat((boxes[keep], scores[keep, None], labels[keep, None].to(boxes.dtype)), 1))
    return output
