"""Collate detection samples into one batch dict."""

from __future__ import annotations

from typing import Any, Sequence

import torch


def collate_detection(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Stack images and concatenate targets, recording which image each box belongs to.

    Args:
        samples: dataset samples (``img`` uint8 [3, H, W], ``cls`` [n_i, 1], ``bboxes`` [n_i, 4]
            normalized xywh, ``im_file``, ``ori_shape``, ``resized_shape``, ``ratio_pad``).

    Returns:
        ``img`` uint8 [B, 3, H, W]; ``cls`` float32 [N, 1]; ``bboxes`` float32 [N, 4] normalized
        xywh; ``batch_idx`` float32 [N] (index of the image in the batch); ``im_file``,
        ``ori_shape``, ``resized_shape``, ``ratio_pad``: lists of length B; with segmentation samples also
        ``masks`` int16 [B, H, W] (per image its instance-index map: k + 1 marks the image's k-th box).
    """
    if not samples:
        raise ValueError("collate_detection needs at least one sample")
    cls = [s["cls"].reshape(-1, 1).float() for s in samples]
    out = {
        "img": torch.stack([s["img"] for s in samples], 0),
        "cls": torch.cat(cls, 0),
        "bboxes": torch.cat([s["bboxes"].reshape(-1, 4).float() for s in samples], 0),
        "batch_idx": torch.cat([torch.full((len(c),), float(i)) for i, c in enumerate(cls)], 0),
        "im_file": [s["im_file"] for s in samples],
        "ori_shape": [s["ori_shape"] for s in samples],
        "resized_shape": [s["resized_shape"] for s in samples],
        "ratio_pad": [s["ratio_pad"] for s in samples],
    }
    if "masks" in samples[0]:
        out["masks"] = torch.stack([s["masks"] for s in samples], 0)
    return out
