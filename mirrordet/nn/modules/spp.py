"""SPP: spatial pyramid pooling (He et al. 2014, as used in YOLOv3-SPP).

``cv1`` halves the channels; max-pools of stride 1 and 'same' padding with several kernel sizes
run in parallel on that map; the map and every pooled copy are concatenated and fused by ``cv2``.
(:class:`~mirrordet.nn.modules.blocks.SPPF` chains equal pools instead.)
Shape: [B, c1, H, W] -> [B, c2, H, W].
"""

from __future__ import annotations

import torch
from torch import nn

from mirrordet.nn.modules.base import BuildContext, chain, check_args, single_input
from mirrordet.nn.modules.conv import Conv
from mirrordet.registry import MODULES
from mirrordet.utils.errors import ModelConfigError

MAX_POOLS = 16


@MODULES.register()
class SPP(nn.Module):
    """``y = cv1(x); out = cv2(cat([y, pool_k1(y), pool_k2(y), ...]))``, pools of odd sizes ``k``.

    Args:
        c1, c2: channels (hidden c_ = c1 // 2). k: the pool kernel sizes, odd and >= 1.
    """

    yaml_example = (-1, [64, [5, 9, 13]])  # (from, args) of a row the registry-wide tests build

    def __init__(self, c1: int, c2: int, k: tuple[int, ...] | list[int] = (5, 9, 13)) -> None:
        super().__init__()
        ks = list(k)
        ok = 1 <= len(ks) <= MAX_POOLS and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1
                                               and v % 2 for v in ks)
        if not ok:
            raise ModelConfigError(f"SPP k must be a list of 1..{MAX_POOLS} odd kernel sizes >= 1, got {k!r}")
        c_ = c1 // 2
        self.cv1 = Conv(c1, c_, 1, 1)
        self.cv2 = Conv(c_ * (len(ks) + 1), c2, 1, 1)
        self.m = nn.ModuleList(nn.MaxPool2d(kernel_size=v, stride=1, padding=v // 2) for v in ks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cv1(x)
        return self.cv2(torch.cat([y] + [m(y) for m in self.m], 1))

    @classmethod
    def from_yaml(cls, c_in: list[int], args: list, n: int, ctx: BuildContext):
        """Args ``[c2, k=[5, 9, 13]]``; c2 is width-scaled; ``repeats`` stacks n blocks."""
        check_args(cls.__name__, args, (("c2", int), ("k", list)), required=1)
        c1, c2 = single_input(cls.__name__, c_in), ctx.channels(args[0])
        full = [c1, c2, *args[1:]]
        return chain(cls, full, n), c2, full
