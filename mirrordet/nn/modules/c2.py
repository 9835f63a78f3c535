"""C2: the two-convolution CSP block (the neck block of the YOLOv8 P6 files).

``cv1`` widens to 2 * c_ channels that are split in two halves; the first passes n bottlenecks,
the second bypasses them; ``cv2`` fuses the concatenation. Unlike C2f, only the last bottleneck
output is kept. Shape: [B, c1, H, W] -> [B, c2, H, W].
"""

from __future__ import annotations

import torch
from torch import nn

from mirrordet.nn.modules.blocks import Bottleneck, CSPBlock
from mirrordet.nn.modules.conv import Conv
from mirrordet.registry import MODULES
from mirrordet.utils.errors import ModelConfigError


@MODULES.register()
class C2(CSPBlock):
    """CSP bottleneck with two convolutions: ``a, b = cv1(x).chunk(2); out = cv2(cat(m(a), b))``.

    Args:
        c1, c2: channels. n: bottlenecks (two 3x3 convs each, full width). shortcut: residual
        bottlenecks. g: groups of each bottleneck's second conv. e: hidden ratio (c_ = int(c2 * e)).
    """

    yaml_example = (-1, [64, True])  # (from, args) of a row the registry-wide tests build

    EXTRA_ARGS = (("g", int), ("e", float))

    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = True, g: int = 1, e: float = 0.5) -> None:
        super().__init__()
        if not 0 < e <= 1:
            raise ModelConfigError(f"C2 hidden ratio e must be in (0, 1], got {e}")
        self.c = int(c2 * e)
        self.cv1 = Conv(c1, 2 * self.c, 1, 1)
        self.cv2 = Conv(2 * self.c, c2, 1)
        self.m = nn.Sequential(*(Bottleneck(self.c, self.c, shortcut, g, k=(3, 3), e=1.0) for _ in range(n)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.cv1(x).chunk(2, 1)
        return self.cv2(torch.cat((self.m(a), b), 1))
