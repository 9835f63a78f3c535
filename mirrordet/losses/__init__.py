"""mirrordet.losses: assigners and training losses, one family a file."""

from mirrordet.losses.bbox import box_losses, dfl_decode, distribution_focal_loss
from mirrordet.losses.tal import TaskAlignedAssigner
from mirrordet.losses.yolo import DetectionLoss, pack_targets

__all__ = [
    "DetectionLoss", "TaskAlignedAssigner", "box_losses", "dfl_decode", "distribution_focal_loss",
    "pack_targets",
]
