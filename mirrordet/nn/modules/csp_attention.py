"""CSPAttn: a CSP stage (C2f layout) with ECA or CBAM attention, as in the CSP-attention Faster R-CNN."""

from __future__ import annotations

import torch
from torch import nn

from mirrordet.nn.modules.attention import CBAM, ECA
from mirrordet.nn.modules.blocks import Bottleneck, CSPBlock
from mirrordet.nn.modules.conv import Conv
from mirrordet.registry import MODULES
from mirrordet.utils.errors import ModelConfigError

ATTENTIONS = ("eca", "cbam", "none")


@MODULES.register()
class CSPAttn(CSPBlock):
    """CSP stage with attention: [B, c1, H, W] -> [B, c2, H, W].

    y = cv1(x) split into halves (a, b); b passes n bottlenecks, each output kept (C2f layout);
    ``cbam``: CBAM after each bottleneck (after its last conv); ``eca``: ECA rescales the
    concatenated features cat([a, b, m1..mn]) before the transition conv cv2; ``none``: plain C2f.
    YAML args ``[c2, shortcut=False, attn='eca']``; ``repeats`` is the bottleneck count.
    """

    yaml_example = (-1, [64, True, "cbam"])  # (from, args) of a row the registry-wide tests build

    EXTRA_ARGS = (("attn", str),)

    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = False, attn: str = "eca") -> None:
        super().__init__()
        if attn not in ATTENTIONS:
            raise ModelConfigError(f"CSPAttn attn must be one of {ATTENTIONS}, got {attn!r}")
        self.c = int(c2 * 0.5)
        self.cv1 = Conv(c1, 2 * self.c, 1, 1)
        self.cv2 = Conv((2 + n) * self.c, c2, 1)
        self.m = nn.ModuleList(
            nn.Sequential(Bottleneck(self.c, self.c, shortcut, 1, k=(3, 3), e=1.0),
                          *([CBAM(self.c)] if attn == "cbam" else []))
            for _ in range(n))
        self.attn = ECA((2 + n) * self.c) if attn == "eca" else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = list(self.cv1(x).chunk(2, 1))
        for m in self.m:
            y.append(m(y[-1]))
        return self.cv2(self.attn(torch.cat(y, 1)))
