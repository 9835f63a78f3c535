"""Instance-mask helpers shared by the segmentation head, its loss and the validator."""

from __future__ import annotations

import numpy as np
import torch


def crop_masks(masks: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Zero every mask outside its box (a pixel is inside when its centre is).

    Args:
        masks: [n, h, w] (any dtype that multiplies with bool).
        boxes: [n, 4] xyxy in mask pixels (pixel j spans [j, j + 1)).

    Returns:
        [n, h, w], ``masks`` where the pixel centre lies in [x1, x2) x [y1, y2), else 0.
    """
    _, h, w = masks.shape
    x1, y1, x2, y2 = (v[:, None, None] for v in boxes.unbind(1))  # each [n, 1, 1]
    cols = torch.arange(w, device=masks.device, dtype=boxes.dtype)[None, None, :] + 0.5
    rows = torch.arange(h, device=masks.device, dtype=boxes.dtype)[None, :, None] + 0.5
    inside = (cols >= x1) & (cols < x2) & (rows >= y1) & (rows < y2)
    return masks * inside


def scale_masks(masks: torch.Tensor, ratio_pad: tuple[tuple[float, float], tuple[float, float]],
                ori_shape: tuple[int, int], chunk: int = 32) -> torch.Tensor:
    """Masks on the letterboxed network input -> masks on the original image.

    Args:
        masks: bool [n, H, W] at the network input.
        ratio_pad: ((gain_h, gain_w), (pad_w, pad_h)) of the letterbox (original pixel x -> x * gain + pad).
        ori_shape: (h0, w0) of the original image.
        chunk: masks resized at a time (bounds the float memory).

    Returns:
        bool [n, h0, w0]: the letterbox padding cut away, the rest resized bilinearly and thresholded at 0.5.
    """
    (gh, gw), (pw, ph) = ratio_pad
    h0, w0 = ori_shape
    top, left = int(round(ph)), int(round(pw))
    h1, w1 = max(1, int(round(h0 * gh))), max(1, int(round(w0 * gw)))
    inner = masks[:, top:top + h1, left:left + w1]
    out = torch.zeros((masks.shape[0], h0, w0), dtype=torch.bool, device=masks.device)
    for i in range(0, masks.shape[0], chunk):
        part = inner[i:i + chunk].float()[:, None]
        if part.shape[-2:] != (h0, w0):
            part = torch.nn.functional.interpolate(part, size=(h0, w0), mode="bilinear", align_corners=False)
        out[i:i + chunk] = part[:, 0] > 0.5
    return out


def instance_masks(index_map: torch.Tensor, n: int) -> torch.Tensor:
    """The first ``n`` instances of an index map as binary masks: int [H, W] (k + 1 = instance k) -> bool
    [n, H, W]."""
    ids = torch.arange(1, n + 1, device=index_map.device)
    return index_map.long()[None] == ids[:, None, None]


def encode_rle(masks: torch.Tensor) -> list[dict[str, object]]:
    """COCO RLE of binary masks bool [n, H, W] as pycocotools encodes them, JSON-ready:
    ``{"size": [H, W], "counts": str}`` per mask."""
    from pycocotools import mask as mask_utils

    if masks.shape[0] == 0:
        return []
    rles = mask_utils.encode(np.asfortranarray(masks.permute(1, 2, 0).cpu().numpy().astype(np.uint8)))
    return [{"size": [int(v) for v in r["size"]], "counts": r["counts"].decode("ascii")} for r in rles]
