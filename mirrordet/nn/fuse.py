"""Inference-time fusion: fold each Conv module's BatchNorm into its convolution.

For a Conv2d with weight W [c2, c1/g, k, k] (no bias) followed by a BatchNorm2d with running
mean mu, variance var, scale gamma, shift beta and eps, eval-mode BN(conv(x)) equals a single
convolution with

    W' = W * (gamma / sqrt(var + eps))[:, None, None, None]
    b' = beta - mu * gamma / sqrt(var + eps)

Fusion is for inference only: a fused model has no BatchNorm layers left to train, and its
state dict no longer matches the unfused architecture (checkpoints keep the unfused weights).
"""

from __future__ import annotations

import torch
from torch import nn

from mirrordet.nn.modules.conv import Conv


@torch.no_grad()
def fuse_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A new Conv2d (with bias) computing ``bn(conv(x))`` of eval-mode ``bn``.

    Args:
        conv: the convolution (bias optional), weight [c2, c1 / groups, kh, kw].
        bn: the BatchNorm2d over its c2 output channels.

    Returns:
        A Conv2d with the same geometry, on the same device and dtype as ``conv``, without gradients.
    """
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                      conv.dilation, conv.groups, bias=True, padding_mode=conv.padding_mode)
    fused = fused.to(device=conv.weight.device, dtype=conv.weight.dtype).requires_grad_(False)
    var = bn.running_var if bn.running_var is not None else torch.ones_like(bn.weight)
    mean = bn.running_mean if bn.running_mean is not None else torch.zeros_like(bn.weight)
    gamma = bn.weight if bn.weight is not None else torch.ones_like(var)
    beta = bn.bias if bn.bias is not None else torch.zeros_like(var)
    scale = gamma.double() / torch.sqrt(var.double() + bn.eps)  # [c2], float64 for exactness
    weight = conv.weight.double() * scale.view(-1, 1, 1, 1)
    bias = conv.bias.double() if conv.bias is not None else torch.zeros_like(scale)
    fused.weight.copy_(weight.to(fused.weight.dtype))
    fused.bias.copy_(((bias - mean.double()) * scale + beta.double()).to(fused.bias.dtype))
    return fused


def fuse(model: nn.Module) -> nn.Module:
    """Fold BatchNorm into the convolution of every :class:`Conv` module of ``model``, in place.

    Each fused Conv keeps its ``conv`` (now with a bias) and ``act``; its ``bn`` becomes
    ``nn.Identity()``, so ``Conv.forward`` is unchanged. Already fused modules are skipped. The
    model is put in eval mode (BatchNorm statistics are frozen by the fusion).

    Args:
        model: any module tree, e.g. a :class:`mirrordet.nn.graph.ModelGraph`.

    Returns:
        ``model`` itself, fused, in eval mode.
    """
    model.eval()
    for m in model.modules():
        if isinstance(m, Conv) and isinstance(m.bn, nn.BatchNorm2d):
            m.conv = fuse_conv_bn(m.conv, m.bn)
            m.bn = nn.Identity()
    return model


def is_fused(model: nn.Module) -> bool:
    """True when no :class:`Conv` module of ``model`` still has a BatchNorm."""
    return not any(isinstance(m, Conv) and isinstance(m.bn, nn.BatchNorm2d) for m in model.modules())
