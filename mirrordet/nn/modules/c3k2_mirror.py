"""C3k2Mirror: YOLO11's C3k2 with its inner blocks run on the two mirrored views of CSPMirror.

Same arguments first, same parameters and output shape as C3k2; only the inner chain changes:
``b`` (the half that C3k2 passes through its inner blocks) is split into two overlapping
half-width views, the right one mirrored, which share one pass of the inner blocks (bottlenecks,
or C3k at the deep scales); every inner output is stitched back with the overlap strip averaged
(see :mod:`mirrordet.nn.modules.cspmirror` and docs/cspmirror.md).
Shape: [B, c1, H, W] -> [B, c2, H, W] for every H, W >= 1.
"""

from __future__ import annotations

import torch

from mirrordet.nn.modules.c3k2 import C3k2
from mirrordet.nn.modules.cspmirror import mirrored_chain
from mirrordet.registry import MODULES
from mirrordet.utils.errors import ModelConfigError


@MODULES.register()
class C3k2Mirror(C3k2):
    """C3k2 whose inner blocks see the mirrored, overlapping views of their input.

    Args: as :class:`C3k2` (c1, c2, n, c3k, e), then ``overlap`` (fraction of W both views see,
    in [0, 1]) and ``flip`` (mirror the right view), then g and shortcut.
    YAML args: ``[c2, c3k=False, e=0.5, overlap=0.2, flip=True]``; at the deep scales (m, l, x) the
    inner blocks are C3k, as in C3k2.
    """

    yaml_example = (-1, [64, False, 0.25, 0.2, True])
    ARG_SPEC = (("c2", int), ("c3k", bool), ("e", float), ("overlap", float), ("flip", bool))  # read by from_yaml

    def __init__(self, c1: int, c2: int, n: int = 1, c3k: bool = False, e: float = 0.5, overlap: float = 0.2,
                 flip: bool = True, g: int = 1, shortcut: bool = True) -> None:
        super().__init__(c1, c2, n, c3k, e, False, g, shortcut)
        if not 0.0 <= float(overlap) <= 1.0:
            raise ModelConfigError(f"C3k2Mirror overlap must be within [0, 1], got {overlap}")
        self.overlap, self.flip = float(overlap), bool(flip)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.cv1(x).chunk(2, 1)
        return self.cv2(torch.cat([a, b, *mirrored_chain(b, self.m, self.overlap, self.flip)], 1))

    def extra_repr(self) -> str:
        return f"overlap={self.overlap}, flip={self.flip}"
