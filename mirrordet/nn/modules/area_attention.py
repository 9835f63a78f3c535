"""Area attention and the R-ELAN stage of YOLO12: AAttn, ABlock and A2C2f.

Area attention cuts the flattened H x W positions into ``area`` equal, consecutive pieces
(horizontal stripes when H is a multiple of ``area``) and runs multi-head self-attention inside
each piece only, which divides the quadratic cost by ``area``; ``area=1`` is global attention.
A 7x7 depthwise conv over the values adds the positional term. ABlock is attention plus a
two-conv feed-forward, both residual. A2C2f (residual ELAN) is a C2f-like stage whose inner blocks
are pairs of ABlocks (or C3k blocks), optionally with a learned per-channel scale on a block-level
residual.
"""

from __future__ import annotations

import torch
from torch import nn

from mirrordet.nn.modules.base import BuildContext, check_args, single_input
from mirrordet.nn.modules.c3k2 import C3k
from mirrordet.nn.modules.conv import Conv
from mirrordet.registry import MODULES
from mirrordet.utils.errors import ModelConfigError

HEAD_DIM = 32  # channels per attention head of A2C2f's ABlocks
RESIDUAL_SCALES = ("l", "x")  # scales whose A2C2f rows default to the scaled residual and mlp ratio 1.2
RESIDUAL_MLP_RATIO = 1.2
GAMMA_INIT = 0.01  # initial per-channel scale of the block-level residual


class AAttn(nn.Module):
    """Multi-head self-attention within ``area`` consecutive pieces of the flattened positions.

    One 1x1 conv gives, per position and head, ``head_dim`` query, key and value channels (stored
    per head as [q, k, v]); ``out = proj(attn(v) + pe(v))`` with pe a 7x7 depthwise conv.

    Args:
        dim: channels. num_heads: heads (must divide dim). area: pieces (H * W must be a multiple).
    Shape: [B, dim, H, W] -> [B, dim, H, W].
    """

    def __init__(self, dim: int, num_heads: int, area: int = 1) -> None:
        super().__init__()
        if num_heads < 1 or dim % num_heads:
            raise ModelConfigError(f"area attention over {dim} channels needs a head count dividing it, "
                                   f"got {num_heads}")
        if area < 1:
            raise ModelConfigError(f"area attention needs area >= 1, got {area}")
        self.area = area
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = Conv(dim, 3 * dim, 1, act=False)
        self.proj = Conv(dim, dim, 1, act=False)
        self.pe = Conv(dim, dim, 7, 1, 3, g=dim, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        n = h * w
        if n % self.area:
            raise ValueError(f"area attention: {h}x{w} = {n} positions do not split into {self.area} equal areas")
        ba, na = b * self.area, n // self.area
        qkv = self.qkv(x).flatten(2).transpose(1, 2).reshape(ba, na, self.num_heads, 3 * self.head_dim)
        q, k, v = qkv.permute(0, 2, 3, 1).split(self.head_dim, dim=2)  # each [B*area, heads, head_dim, N/area]
        attn = ((q.transpose(-2, -1) @ k) * self.head_dim ** -0.5).softmax(dim=-1)  # [B*area, heads, Na, Na]
        y = v @ attn.transpose(-2, -1)

        def to_map(t: torch.Tensor) -> torch.Tensor:  # [B*area, heads, head_dim, Na] -> [B, C, H, W]
            return t.permute(0, 3, 1, 2).reshape(b, h, w, c).permute(0, 3, 1, 2)

        v = to_map(v)
        return self.proj(to_map(y) + self.pe(v))

    def extra_macs(self, x: torch.Tensor) -> int:
        """Multiply-accumulates of the two attention products within each area (not modules, so thop cannot
        see them): per area and head 2 x Na x Na x head_dim, Na = H * W / area."""
        na = x.shape[2] * x.shape[3] // self.area
        return x.shape[0] * self.area * self.num_heads * 2 * na * na * self.head_dim


class ABlock(nn.Module):
    """``x + attn(x)``, then ``x + mlp(x)`` with a two-conv feed-forward of ``int(dim * mlp_ratio)``
    hidden channels. Conv weights start from a truncated normal (std 0.02). Shape preserved.
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 1.2, area: int = 1) -> None:
        super().__init__()
        hidden = int(dim * mlp_ratio)
        if hidden < 1:
            raise ModelConfigError(f"ABlock mlp_ratio must give at least one hidden channel, got {mlp_ratio}")
        self.attn = AAttn(dim, num_heads=num_heads, area=area)
        self.mlp = nn.Sequential(Conv(dim, hidden, 1), Conv(hidden, dim, 1, act=False))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(x)
        return x + self.mlp(x)


@MODULES.register()
class A2C2f(nn.Module):
    """Residual ELAN stage with area attention.

    y0 = cv1(x) (c_ = int(c2 * e) channels); y_i = m_i(y_{i-1}) for the n inner blocks; every
    y_i is kept: out = cv2(cat(y0..yn)). Inner block: two ABlocks (``a2``; c_ // 32 heads, c_ a
    multiple of 32) or a C3k of two bottlenecks. With ``a2`` and ``residual``:
    out = x + gamma * out, gamma a per-channel scale starting at 0.01 (needs c1 == c2).

    Args:
        c1, c2: channels. n: inner blocks. a2: attention blocks. area: areas of the attention.
        residual: scaled block residual. mlp_ratio: ABlock feed-forward ratio. e: hidden ratio.
        g: groups and shortcut: of the C3k bottlenecks (without ``a2``).
    Shape: [B, c1, H, W] -> [B, c2, H, W].
    """

    yaml_example = (-1, [64, True, 4])  # (from, args) of a row the registry-wide tests build

    def __init__(self, c1: int, c2: int, n: int = 1, a2: bool = True, area: int = 1, residual: bool = False,
                 mlp_ratio: float = 2.0, e: float = 0.5, g: int = 1, shortcut: bool = True) -> None:
        super().__init__()
        if not 0 < e <= 1:
            raise ModelConfigError(f"A2C2f hidden ratio e must be in (0, 1], got {e}")
        c_ = int(c2 * e)
        if a2 and (c_ < HEAD_DIM or c_ % HEAD_DIM):
            raise ModelConfigError(f"A2C2f attention needs hidden channels int(c2 * e) = {c_} to be a positive "
                                   f"multiple of {HEAD_DIM} (one head per {HEAD_DIM} channels)")
        if a2 and residual and c1 != c2:
            raise ModelConfigError(f"A2C2f with residual adds its input: input {c1} channels, output {c2} asked")
        self.cv1 = Conv(c1, c_, 1, 1)
        self.cv2 = Conv((1 + n) * c_, c2, 1)
        self.gamma = nn.Parameter(GAMMA_INIT * torch.ones(c2)) if a2 and residual else None
        self.m = nn.ModuleList(
            nn.Sequential(*(ABlock(c_, c_ // HEAD_DIM, mlp_ratio, area) for _ in range(2))) if a2
            else C3k(c_, c_, 2, shortcut, g)
            for _ in range(n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = [self.cv1(x)]
        for m in self.m:
            y.append(m(y[-1]))
        out = self.cv2(torch.cat(y, 1))
        return out if self.gamma is None else x + self.gamma.view(1, -1, 1, 1) * out

    @classmethod
    def from_yaml(cls, c_in: list[int], args: list, n: int, ctx: BuildContext):
        """Args ``[c2, a2=True, area=1, residual=False, mlp_ratio=2.0, e=0.5, g=1, shortcut=True]``;
        ``repeats`` are the inner blocks. At the scales l and x, residual and mlp_ratio default to
        True and 1.2 (what the YOLO12 files expect there); values a row gives are kept."""
        spec = (("c2", int), ("a2", bool), ("area", int), ("residual", bool), ("mlp_ratio", float), ("e", float),
                ("g", int), ("shortcut", bool))
        check_args(cls.__name__, args, spec, required=1)
        c1, c2 = single_input(cls.__name__, c_in), ctx.channels(args[0])
        rest = list(args[1:])
        if ctx.scale in RESIDUAL_SCALES and len(rest) < 4:
            defaults = [True, 1, True, RESIDUAL_MLP_RATIO]  # a2, area, residual, mlp_ratio
            rest += defaults[len(rest):]
        full = [c1, c2, n, *rest]
        return cls(*full), c2, full
