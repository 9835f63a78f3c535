"""Structural re-parameterization: fold BatchNorm into a conv, and parallel conv branches into one.

A block trained with parallel branches that are each a conv + BN without activation
(``act(bn1(conv_k(x)) + bn2(conv_j(x)))``, j <= k, same stride and centre) equals, in eval mode,
one k x k conv whose kernel is the sum of the branch kernels, each zero-padded to k x k, with the
summed biases. Blocks that can be folded so implement ``reparameterize()``; ``mirrordet.nn.fuse``
calls it for inference.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


@torch.no_grad()
def fuse_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A new Conv2d (with bias) computing ``bn(conv(x))`` of eval-mode ``bn``.

    For a weight W [c2, c1/g, k, k] and BN (mean mu, variance var, scale gamma, shift beta, eps):
    ``W' = W * gamma / sqrt(var + eps)`` per output channel, ``b' = (b - mu) * gamma / sqrt(var + eps) + beta``.

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


def folded(branch: nn.Module) -> nn.Conv2d:
    """The single conv equal to an eval-mode conv + BN branch (a ``Conv`` with ``conv`` and ``bn``;
    its BN may already be folded, i.e. ``nn.Identity``)."""
    if isinstance(branch.bn, nn.BatchNorm2d):
        return fuse_conv_bn(branch.conv, branch.bn)
    return branch.conv


@torch.no_grad()
def merge_branches(main: nn.Module, *others: nn.Module) -> nn.Conv2d:
    """One conv equal to the sum of the eval-mode branches ``main + others`` (each a conv + BN).

    ``main`` has the largest kernel; every other kernel is zero-padded to its size at the centre
    (all branches 'same'-padded, equal stride and groups). Returns a Conv2d with bias, no gradients.
    """
    base = folded(main)
    weight, bias = base.weight.clone(), base.bias.clone()
    for other in others:
        conv = folded(other)
        pad = (weight.shape[-1] - conv.weight.shape[-1]) // 2
        weight += F.pad(conv.weight, [pad] * 4)
        bias += conv.bias
    base.weight.copy_(weight)
    base.bias.copy_(bias)
    return base
