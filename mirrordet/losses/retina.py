"""RetinaNet loss: IoU-matched anchors, sigmoid focal classification loss + L1 (deltas) or GIoU box loss."""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch.nn import functional as F
from torchvision.ops import generalized_box_iou_loss, sigmoid_focal_loss

from mirrordet.losses.base import Loss
from mirrordet.ops.anchor_boxes import decode_boxes, encode_boxes, match_anchors
from mirrordet.ops.targets import image_targets
from mirrordet.utils.errors import MirrordetError


class RetinaLoss(Loss):
    """Loss of a :class:`~mirrordet.nn.modules.head_retina.RetinaHead`.

    Args:
        nc: classes. fg_iou / bg_iou: matcher thresholds (IoU >= fg_iou positive, < bg_iou negative,
            between ignored; each box also gets its best anchors). alpha, gamma: focal loss.
        box_loss: ``l1`` on encoded deltas or ``giou`` on decoded boxes. box, cls: loss gains.
    """

    names = ("box_loss", "cls_loss")

    def __init__(self, nc: int, fg_iou: float = 0.5, bg_iou: float = 0.4, alpha: float = 0.25, gamma: float = 2.0,
                 box_loss: str = "l1", box: float = 1.0, cls: float = 1.0) -> None:
        if box_loss not in ("l1", "giou"):
            raise MirrordetError(f"RetinaLoss box_loss must be 'l1' or 'giou', got {box_loss!r}")
        self.nc, self.fg_iou, self.bg_iou = nc, fg_iou, bg_iou
        self.alpha, self.gamma, self.box_loss, self.gains = alpha, gamma, box_loss, (box, cls)

    def terms(self, preds: Sequence[torch.Tensor], batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Args: preds = [cls [B, A, nc] logits, deltas [B, A, 4], anchors [B, A, 4] xyxy pixels];
        batch: ``cls``, ``bboxes`` (normalized xywh), ``batch_idx``, ``img``.

        Returns:
            ``{"box_loss": box * L_box, "cls_loss": cls * L_focal}`` (reduction ``"sum"``): each a
            per-image sum over anchors divided by the image's positives (>= 1), summed over the batch.
        """
        with torch.autocast(device_type=preds[0].device.type, enabled=False):
            cls_logits, deltas, anchors = (p.float() for p in preds)
            bsz = cls_logits.shape[0]
            box_l = cls_logits.new_zeros(())
            cls_l = cls_logits.new_zeros(())
            for i, (labels, gt) in enumerate(image_targets(batch, bsz, cls_logits.device)):
                matched = match_anchors(gt, anchors[i], self.fg_iou, self.bg_iou)
                fg, valid = matched >= 0, matched != -2
                n_fg = max(int(fg.sum()), 1)
                target = torch.zeros_like(cls_logits[i])
                target[fg, labels[matched[fg]]] = 1.0
                cls_l = cls_l + sigmoid_focal_loss(cls_logits[i][valid], target[valid], self.alpha, self.gamma,
                                                   reduction="sum") / n_fg
                if fg.any():
                    gt_fg, a_fg = gt[matched[fg]], anchors[i][fg]
                    if self.box_loss == "l1":
                        box_l = box_l + F.l1_loss(deltas[i][fg], encode_boxes(gt_fg, a_fg), reduction="sum") / n_fg
                    else:
                        box_l = box_l + generalized_box_iou_loss(decode_boxes(deltas[i][fg], a_fg), gt_fg,
                                                                 reduction="sum") / n_fg
            box_l = box_l + deltas.sum() * 0  # keeps the box branch in the graph when no image has a box
            box_l, cls_l = box_l * self.gains[0], cls_l * self.gains[1]
            return {"box_loss": box_l, "cls_loss": cls_l}
