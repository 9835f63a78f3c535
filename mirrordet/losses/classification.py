"""Cross-entropy loss of classification heads."""

from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as F

from mirrordet.losses.base import Loss


class ClassificationLoss(Loss):
    """Mean cross-entropy with optional label smoothing.

    Args:
        label_smoothing: in [0, 1).

    Call: ``(logits [B, C], batch with "cls" int64 [B]) -> {"loss": batch-mean cross-entropy}``
    (reduction ``"mean"``).
    """

    names = ("loss",)
    reduction = "mean"

    def __init__(self, label_smoothing: float = 0.0) -> None:
        self.label_smoothing = float(label_smoothing)

    def terms(self, logits: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"loss": F.cross_entropy(logits.float(), batch["cls"], label_smoothing=self.label_smoothing)}
