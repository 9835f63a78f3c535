"""The one eval result type of detection heads: the detections of one image."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Detections:
    """The detections of one image, in network-input pixels.

    Attributes:
        boxes: [n, 4] float xyxy pixels.
        scores: [n] float confidences in [0, 1].
        labels: [n] int64 class indices.
        masks: [n, H, W] instance masks, or None (room for segmentation heads).
        keypoints: [n, K, 3] (x, y, visibility), or None (room for pose heads).
    """

    boxes: torch.Tensor
    scores: torch.Tensor
    labels: torch.Tensor
    masks: torch.Tensor | None = None
    keypoints: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    @classmethod
    def from_rows(cls, rows: torch.Tensor) -> "Detections":
        """From [n, 6] rows (x1, y1, x2, y2, score, class)."""
        return cls(rows[:, :4], rows[:, 4], rows[:, 5].long())

    def rows(self) -> torch.Tensor:
        """[n, 6] float rows: x1, y1, x2, y2, score, class."""
        return torch.cat([self.boxes, self.scores[:, None], self.labels[:, None].to(self.boxes.dtype)], 1)

    def select(self, keep: torch.Tensor) -> "Detections":
        """The detections at ``keep`` (a bool mask or indices), masks and keypoints included."""
        pick = (lambda t: None if t is None else t[keep])
        return Detections(self.boxes[keep], self.scores[keep], self.labels[keep], pick(self.masks),
                          pick(self.keypoints))

    def to(self, device: torch.device | str) -> "Detections":
        """The same detections on ``device`` (masks and keypoints included)."""
        move = (lambda t: None if t is None else t.to(device))
        return Detections(self.boxes.to(device), self.scores.to(device), self.labels.to(device), move(self.masks),
                          move(self.keypoints))
