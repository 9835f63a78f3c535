"""Per-image ground truth of a detection batch, for losses and heads that loop over images."""

from __future__ import annotations

from typing import Mapping

import torch

from mirrordet.ops.boxes import xywh2xyxy


def image_targets(batch: Mapping[str, torch.Tensor], batch_size: int,
                  device: torch.device) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Split the flat batch targets per image.

    Args:
        batch: ``cls`` [N, 1], ``bboxes`` [N, 4] normalized xywh, ``batch_idx`` [N], ``img`` [B, 3, H, W].

    Returns:
        B pairs (labels [n] long, boxes [n, 4] xyxy pixels of the network input).
    """
    h, w = batch["img"].shape[-2:]
    scale = torch.tensor([w, h, w, h], dtype=torch.float32, device=device)
    boxes = xywh2xyxy(batch["bboxes"].to(device).float() * scale)
    cls = batch["cls"].to(device).view(-1).long()
    idx = batch["batch_idx"].to(device).view(-1).long()
    return [(cls[idx == i], boxes[idx == i]) for i in range(batch_size)]
