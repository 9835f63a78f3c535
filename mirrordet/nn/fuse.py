"""Inference-time fusion: fold each Conv module's BatchNorm into its convolution, then let every
re-parameterizable block (a module with ``reparameterize()``: RepConvN, RepVGGDW, end-to-end heads
dropping their training-only one-to-many branch) fold itself.

The arithmetic (:func:`~mirrordet.nn.modules.reparam.fuse_conv_bn`, branch merging) lives in
:mod:`mirrordet.nn.modules.reparam`.

Fusion is for inference only: a fused model has no BatchNorm layers left to train, and its
state dict no longer matches the unfused architecture (checkpoints keep the unfused weights).
"""

from __future__ import annotations

from torch import nn

from mirrordet.nn.modules.conv import Conv
from mirrordet.nn.modules.reparam import fuse_conv_bn

__all__ = ["fuse", "fuse_conv_bn", "is_fused"]


def fuse(model: nn.Module) -> nn.Module:
    """Fold BatchNorm into the convolution of every :class:`Conv` module of ``model``, in place.

    Each fused Conv keeps its ``conv`` (now with a bias) and ``act``; its ``bn`` becomes
    ``nn.Identity()``, so ``Conv.forward`` is unchanged. Then every module with a
    ``reparameterize()`` method calls it (see :mod:`mirrordet.nn.modules.reparam`). Already fused
    modules are skipped. The model is put in eval mode (BatchNorm statistics are frozen by the fusion).

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
    for m in [m for m in model.modules() if callable(getattr(type(m), "reparameterize", None))]:
        m.reparameterize()  # listed first: a block may replace its own submodules
    return model


def is_fused(model: nn.Module) -> bool:
    """True when no :class:`Conv` module of ``model`` still has a BatchNorm."""
    return not any(isinstance(m, Conv) and isinstance(m.bn, nn.BatchNorm2d) for m in model.modules())
