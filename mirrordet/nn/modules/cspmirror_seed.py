"""CSPMirrorSeed: the seed CSPMirrorNet block's own arithmetic, kept for reference runs only.

It shrinks the map to about 0.6 H x 0.6 W and never sees the top-right and bottom-left
quarters, so it is NOT a drop-in block for detectors; use :class:`CSPMirror` there.

    x: [B, C, H, W]; hs = (H + 1) // 2, ho = int(0.2 * hs); ws, wo likewise for W
    P1 = x[..., :hs + ho, :ws + wo]                 # top-left crop
    P2 = x[..., H - (hs + ho):, W - (ws + wo):]     # bottom-right crop
    Q1, Q2 = base(P1), base(P2)                     # one shared-weight base block
    out = cat([P1 + P2, Q1 + Q2], dim=1)            # [B, C + 2 * cout, hs + ho, ws + wo]

    base(P): x1 = Mish(BN(Conv2d(C, cout, k=2, s=1, p=1)(P)))     # [B, cout, h + 1, w + 1]
             x2 = Mish(BN(Conv2d(cout, cout, k=2, s=1, p=0)(x1)))  # [B, cout, h, w]
             x1 = avg_pool2d(x1, 2, stride=1)                      # [B, cout, h, w]
             return cat([x1, x1 + x2], dim=1)                      # [B, 2 * cout, h, w]
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mirrordet.nn.modules.base import BuildContext, check_args, single_input
from mirrordet.registry import MODULES


class MishedDenseBlock(nn.Module):
    """The seed's base block: [B, c1, h, w] -> [B, 2 * cout, h, w]."""

    def __init__(self, c1: int, cout: int = 4) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(c1, cout, 2, 1, 1), nn.BatchNorm2d(cout), nn.Mish())
        self.conv2 = nn.Sequential(nn.Conv2d(cout, cout, 2, 1, 0), nn.BatchNorm2d(cout), nn.Mish())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.conv1(x)
        x2 = self.conv2(x1)
        x1 = F.avg_pool2d(x1, 2, stride=1)
        return torch.cat([x1, x1 + x2], 1)


def seed_crops(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-left and bottom-right crops with the seed's 20% overlap: 2 x [B, C, hs + ho, ws + wo]."""
    h, w = x.shape[-2:]
    hs, ws = (h + 1) // 2, (w + 1) // 2
    hc, wc = hs + int(0.2 * hs), ws + int(0.2 * ws)
    return x[..., :hc, :wc], x[..., h - hc:, w - wc:]


@MODULES.register()
class CSPMirrorSeed(nn.Module):
    """Seed block: [B, c1, H, W] -> [B, c1 + 2 * cout, ~0.6 H, ~0.6 W]. YAML args ``[cout=4]``."""

    yaml_example = (-1, [4])  # (from, args) of a row the registry-wide tests build

    def __init__(self, c1: int, cout: int = 4) -> None:
        super().__init__()
        self.base = MishedDenseBlock(c1, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p1, p2 = seed_crops(x)
        q1, q2 = self.base(torch.cat([p1, p2], 0)).chunk(2, 0)
        return torch.cat([p1 + p2, q1 + q2], 1)

    @classmethod
    def from_yaml(cls, c_in: list[int], args: list, n: int, ctx: BuildContext):
        check_args(cls.__name__, args, (("cout", int),))
        c1 = single_input(cls.__name__, c_in)
        cout = args[0] if args else 4
        layers, c = [], c1
        for _ in range(n):
            layers.append(cls(c, cout))
            c += 2 * cout
        return (layers[0] if n == 1 else nn.Sequential(*layers)), c, [c1, cout]
