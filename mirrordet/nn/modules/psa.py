"""Position-sensitive attention of YOLO11: multi-head self-attention over all positions of a map,
with a depthwise positional term, inside a CSP split (C2PSA)."""

from __future__ import annotations

import torch
from torch import nn

from mirrordet.nn.modules.base import BuildContext, check_args, single_input
from mirrordet.nn.modules.conv import Conv
from mirrordet.registry import MODULES
from mirrordet.utils.errors import ModelConfigError


class PositionAttention(nn.Module):
    """Multi-head self-attention over the H x W positions, plus a 3x3 depthwise positional encoding.

    Per head: queries and keys of ``key_dim = head_dim * attn_ratio`` channels, values of
    ``head_dim = dim / num_heads`` channels, all from one 1x1 conv. Output: ``proj(attn(v) + pe(v))``.
    Shape: [B, dim, H, W] -> [B, dim, H, W].
    """

    def __init__(self, dim: int, num_heads: int = 8, attn_ratio: float = 0.5) -> None:
        super().__init__()
        if num_heads < 1 or dim % num_heads:
            raise ModelConfigError(f"attention over {dim} channels needs a head count dividing it, got {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.key_dim = int(self.head_dim * attn_ratio)
        self.scale = self.key_dim ** -0.5
        self.qkv = Conv(dim, dim + 2 * self.key_dim * num_heads, 1, act=False)
        self.proj = Conv(dim, dim, 1, act=False)
        self.pe = Conv(dim, dim, 3, 1, g=dim, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(x).view(b, self.num_heads, 2 * self.key_dim + self.head_dim, h * w).split(
            [self.key_dim, self.key_dim, self.head_dim], dim=2)
        attn = ((q.transpose(-2, -1) @ k) * self.scale).softmax(dim=-1)  # [B, heads, N, N]
        y = (v @ attn.transpose(-2, -1)).view(b, c, h, w) + self.pe(v.reshape(b, c, h, w))
        return self.proj(y)

    def extra_macs(self, x: torch.Tensor) -> int:
        """Multiply-accumulates of the two attention products (not modules, so thop cannot see them):
        per head N x N x key_dim (queries . keys) + head_dim x N x N (values . attention), N = H * W."""
        n = x.shape[2] * x.shape[3]
        return x.shape[0] * self.num_heads * n * n * (self.key_dim + self.head_dim)


class PSABlock(nn.Module):
    """``x + attn(x)``, then ``x + ffn(x)`` with a 2x-wide two-conv feed-forward. Shape preserved."""

    def __init__(self, c: int, attn_ratio: float = 0.5, num_heads: int = 4, shortcut: bool = True) -> None:
        super().__init__()
        self.attn = PositionAttention(c, num_heads=num_heads, attn_ratio=attn_ratio)
        self.ffn = nn.Sequential(Conv(c, 2 * c, 1), Conv(2 * c, c, 1, act=False))
        self.add = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(x) if self.add else self.attn(x)
        return x + self.ffn(x) if self.add else self.ffn(x)


@MODULES.register()
class C2PSA(nn.Module):
    """CSP split around ``n`` PSA blocks: ``cv2(cat(a, psa(b)))`` with (a, b) = cv1(x) halves.

    Args:
        c1, c2: channels (equal: the block keeps its width). n: PSA blocks. e: hidden ratio.
    Heads: one per 64 hidden channels. Shape: [B, c1, H, W] -> [B, c1, H, W].
    """

    yaml_example = (-1, [64])  # (from, args) of a row the registry-wide tests build (its input has 64 channels)

    def __init__(self, c1: int, c2: int, n: int = 1, e: float = 0.5) -> None:
        super().__init__()
        if c1 != c2:
            raise ModelConfigError(f"C2PSA keeps its width: input {c1} channels, output {c2} asked")
        self.c = int(c1 * e)
        self.cv1 = Conv(c1, 2 * self.c, 1, 1)
        self.cv2 = Conv(2 * self.c, c1, 1)
        self.m = nn.Sequential(*(PSABlock(self.c, attn_ratio=0.5, num_heads=max(self.c // 64, 1)) for _ in range(n)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.cv1(x).split((self.c, self.c), dim=1)
        return self.cv2(torch.cat((a, self.m(b)), 1))

    @classmethod
    def from_yaml(cls, c_in: list[int], args: list, n: int, ctx: BuildContext):
        """Args ``[c2, e=0.5]``; ``repeats`` are the PSA blocks; c2 (width-scaled) must equal the input."""
        check_args(cls.__name__, args, (("c2", int), ("e", float)), required=1)
        c1, c2 = single_input(cls.__name__, c_in), ctx.channels(args[0])
        full = [c1, c2, n, *args[1:]]
        return cls(*full), c2, full


@MODULES.register()
class PSA(nn.Module):
    """YOLOv10's partial self-attention: one PSA block (attention, then feed-forward, both residual)
    on half of the channels, the other half passed by: ``cv2(cat(a, ffn'(attn'(b))))`` with
    (a, b) = cv1(x) halves, attn'(b) = b + attn(b), ffn'(b) = b + ffn(b).

    The attention and feed-forward are those of :class:`PSABlock` (held directly as ``attn`` and
    ``ffn``, no ``m`` container). Args: c1, c2: channels (equal). e: hidden ratio.
    Heads: one per 64 hidden channels. Shape: [B, c1, H, W] -> [B, c1, H, W].
    """

    yaml_example = (-1, [64])  # (from, args) of a row the registry-wide tests build (its input has 64 channels)

    def __init__(self, c1: int, c2: int, e: float = 0.5) -> None:
        super().__init__()
        if c1 != c2:
            raise ModelConfigError(f"PSA keeps its width: input {c1} channels, output {c2} asked")
        if not 0 < e <= 1:
            raise ModelConfigError(f"PSA hidden ratio e must be in (0, 1], got {e}")
        self.c = int(c1 * e)
        self.cv1 = Conv(c1, 2 * self.c, 1, 1)
        self.cv2 = Conv(2 * self.c, c1, 1)
        block = PSABlock(self.c, attn_ratio=0.5, num_heads=max(self.c // 64, 1))
        self.attn, self.ffn = block.attn, block.ffn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.cv1(x).split((self.c, self.c), dim=1)
        b = b + self.attn(b)
        b = b + self.ffn(b)
        return self.cv2(torch.cat((a, b), 1))

    @classmethod
    def from_yaml(cls, c_in: list[int], args: list, n: int, ctx: BuildContext):
        """Args ``[c2, e=0.5]``; c2 (width-scaled) must equal the input; ``repeats`` stacks n of them."""
        check_args(cls.__name__, args, (("c2", int), ("e", float)), required=1)
        c1, c2 = single_input(cls.__name__, c_in), ctx.channels(args[0])
        full = [c1, c2, *args[1:]]
        return (cls(*full) if n == 1 else nn.Sequential(*(cls(*full) for _ in range(n)))), c2, full
