"""Cross-entropy loss of classification heads."""

from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as F


class ClassificationLoss:
    """Mean cross-entropy with optional label smoothing.

    Args:
        label_smoothing: in [0, 1).

    Call: ``(logits [B, C], batch with "cls" int64 [B]) -> (loss scalar, items [1] detached)``.
    """

    def __init__(self, label_smoothing: float = 0.0) -> None:
        self.label_smoothing = float(label_smoothing)

    def __call__(self, logits: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        loss = F.cross_entropy(logits.float(), batch["cls"], label_smoothing=self.label_smoothing)
        return loss, loss.detach().reshape(1)
