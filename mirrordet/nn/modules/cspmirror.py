"""CSPMirror: a drop-in replacement for C2f that runs its bottlenecks on two mirrored,
overlapping half-width views of the feature map with shared weights (see docs/cspmirror.md).

Tensor-level specification (x: [B, c1, H, W], c = int(c2 * e)):

    y = cv1(x)                              # [B, 2c, H, W]
    a, b = y.chunk(2, dim=1)                # [B, c, H, W] each; a bypasses the mirror stage
    wv = ceil(W * (1 + overlap) / 2)        # view width, rounded to 1e-9 before ceil, <= W
    left  = b[..., :wv]                     # [B, c, H, wv], starts at the left border
    right = flip_w(b[..., W - wv:])         # [B, c, H, wv], mirrored: starts at the right border
                                            # (not mirrored when flip=False)
    v = cat([left, right], dim=0)           # [2B, c, H, wv]: one shared-weight (siamese) pass
    outs = [a, b]
    for m in bottlenecks:                   # n Bottleneck(c, c, shortcut, e=1.0), as in C2f
        v = m(v)
        outs.append(stitch(v))              # [B, c, H, W]
    return cv2(cat(outs, dim=1))            # [B, c2, H, W]

    stitch(v): l, r = v[:B], v[B:]; r = flip_w(r) if flip else r
        s = W - wv (first column the right view covers), o = 2 * wv - W (overlap width)
        out = cat([l[..., :s], (l[..., s:] + r[..., :o]) / 2, r[..., o:]], dim=-1)
        i.e. every column comes from the view(s) covering it; the overlap strip at the cut is
        the average of both views (cross-section sharing).

Widths W < 2 cannot be split: the bottlenecks then run on ``b`` directly (exactly C2f's path;
with W == 1 both views would be the same column, so the result is numerically identical).
The parameters are exactly C2f's for the same arguments; bottleneck FLOPs scale by
``2 * wv / W`` ~= (1 + overlap).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from mirrordet.nn.modules.blocks import Bottleneck, CSPBlock
from mirrordet.nn.modules.conv import Conv
from mirrordet.registry import MODULES
from mirrordet.utils.errors import ModelConfigError


def view_width(w: int | torch.Tensor, overlap: float) -> int | torch.Tensor:
    """Width of each of the two views: ``ceil(w * (1 + overlap) / 2)``, capped at ``w``.

    While tracing for export, ``w`` is a 0-dim tensor; the width is then computed with tensor ops
    (float64) so that an exported graph stays correct at other input widths.
    """
    if isinstance(w, torch.Tensor):
        wv = torch.ceil(w.to(torch.float64) * ((1.0 + overlap) / 2.0) - 1e-9).to(w.dtype)
        return torch.minimum(wv, w)
    return min(w, math.ceil(round(w * (1.0 + overlap) / 2.0, 9)))


def split_views(b: torch.Tensor, wv: int, flip: bool) -> torch.Tensor:
    """[B, C, H, W] -> [2B, C, H, wv]: left view, then the (mirrored) right view."""
    w = b.shape[-1]
    right = b[..., w - wv:]
    return torch.cat([b[..., :wv], right.flip(-1) if flip else right], 0)


def stitch(v: torch.Tensor, w: int, flip: bool) -> torch.Tensor:
    """[2B, C, H, wv] views -> [B, C, H, w]: place both, average the overlap strip."""
    bsz, wv = v.shape[0] // 2, v.shape[-1]
    left, right = v[:bsz], v[bsz:]
    if flip:
        right = right.flip(-1)
    s, o = w - wv, 2 * wv - w
    return torch.cat([left[..., :s], (left[..., s:] + right[..., :o]) * 0.5, right[..., o:]], -1)


def mirrored_chain(b: torch.Tensor, blocks: nn.ModuleList, overlap: float, flip: bool) -> list[torch.Tensor]:
    """Run ``blocks`` in sequence on the two mirrored views of ``b`` ([B, c, H, W]); return every
    block's stitched output ([B, c, H, W] each). Maps narrower than 2 columns run unsplit."""
    w = b.shape[-1]
    if w < 2:  # nothing to split: the plain chain
        outs, v = [], b
        for m in blocks:
            v = m(v)
            outs.append(v)
        return outs
    outs, v = [], split_views(b, view_width(w, overlap), flip)
    for m in blocks:
        v = m(v)
        outs.append(stitch(v, w, flip))
    return outs


@MODULES.register()
class CSPMirror(CSPBlock):
    """C2f-compatible CSP block with a siamese, mirrored horizontal expansion.

    Args:
        c1, c2: input / output channels. n: bottlenecks. shortcut: residual bottlenecks.
        overlap: fraction of W shared by the two views (0 <= overlap <= 1).
        flip: mirror the right view so both views start at an image border.
        e: hidden width ratio, as in C2f.

    Shape: [B, c1, H, W] -> [B, c2, H, W] for every H, W >= 1.
    YAML args: ``[c2, shortcut=False, overlap=0.2, flip=True, e=0.5]``.
    """

    yaml_example = (-1, [64, True, 0.2, True])  # (from, args) of a row the registry-wide tests build

    EXTRA_ARGS = (("overlap", float), ("flip", bool), ("e", float))

    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = False, overlap: float = 0.2,
                 flip: bool = True, e: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= float(overlap) <= 1.0:
            raise ModelConfigError(f"CSPMirror overlap must be within [0, 1], got {overlap}")
        self.c = int(c2 * e)
        self.overlap, self.flip = float(overlap), bool(flip)
        self.cv1 = Conv(c1, 2 * self.c, 1, 1)
        self.cv2 = Conv((2 + n) * self.c, c2, 1)
        self.m = nn.ModuleList(Bottleneck(self.c, self.c, shortcut, 1, k=(3, 3), e=1.0) for _ in range(n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.cv1(x).chunk(2, 1)
        return self.cv2(torch.cat([a, b, *mirrored_chain(b, self.m, self.overlap, self.flip)], 1))

    def extra_repr(self) -> str:
        return f"overlap={self.overlap}, flip={self.flip}"
