"""Instance masks of one prediction (segment task), at the original image size."""

from __future__ import annotations

import numpy as np
import torch

from mirrordet.data.segments import largest_outline
from mirrordet.ops.masks import encode_rle


class Masks:
    """Binary instance masks of one image, one per detection (same order as its boxes).

    Args:
        data: bool [n, H, W] at the original image size (the letterbox undone).
    """

    def __init__(self, data: torch.Tensor) -> None:
        if data.ndim != 3:
            raise ValueError(f"Masks data must be [n, H, W], got {tuple(data.shape)}")
        self.data = data.bool()
        self._xy: list[np.ndarray] | None = None

    def __len__(self) -> int:
        return int(self.data.shape[0])

    @property
    def orig_shape(self) -> tuple[int, int]:
        return int(self.data.shape[1]), int(self.data.shape[2])

    @property
    def xy(self) -> list[np.ndarray]:
        """Per mask the outline of its largest part, float32 [k, 2] (x, y) pixels; [0, 2] for an empty mask."""
        if self._xy is None:
            outlines = [largest_outline(m) for m in self.data.cpu().numpy()]
            self._xy = [p if p is not None else np.zeros((0, 2), np.float32) for p in outlines]
        return self._xy

    @property
    def xyn(self) -> list[np.ndarray]:
        """:attr:`xy` normalized by the image width and height (the YOLO-seg label format)."""
        h, w = self.orig_shape
        return [p / np.array([w, h], np.float32) for p in self.xy]

    def rle(self) -> list[dict[str, object]]:
        """COCO RLE of every mask (``{"size": [H, W], "counts": str}``), as pycocotools encodes it."""
        return encode_rle(self.data)

    def __repr__(self) -> str:
        return f"Masks(n={len(self)}, orig_shape={self.orig_shape})"
