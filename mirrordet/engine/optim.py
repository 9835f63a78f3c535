"""Optimizer construction, learning-rate schedule and warmup.

Parameters are split into three groups, always in this order:

    group 0: weights that get weight decay (conv/linear kernels and any other parameter
             not listed below)
    group 1: weights of normalization layers (BatchNorm*, SyncBatchNorm, InstanceNorm*,
             GroupNorm, LayerNorm, RMSNorm): no weight decay
    group 2: every parameter named ``bias``: no weight decay

Parameters with ``requires_grad`` False are left out; a tensor shared by several modules
appears once. A group may be empty (e.g. a model without normalization layers); the
indices stay fixed so that warmup can treat group 2 as the bias group.
"""

from __future__ import annotations

import math
import re
from typing import Callable

import numpy as np
import torch
from torch import nn

from mirrordet.utils.errors import ConfigError
from mirrordet.utils.log import LOGGER
from mirrordet.utils.torch_utils import de_parallel

__all__ = [
    "OPTIMIZER_NAMES",
    "split_param_groups",
    "build_optimizer",
    "optimizer_momentum",
    "fused_adam_supported",
    "build_lr_lambda",
    "warmup_iterations",
    "warmup_step",
]

OPTIMIZER_NAMES: tuple[str, ...] = ("auto", "SGD", "Adam", "AdamW")

# "auto" switches from AdamW to SGD above this many optimizer iterations.
AUTO_SGD_ITERATIONS = 10000


def _norm_types() -> tuple[type, ...]:
    types: list[type] = [nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm, nn.LocalResponseNorm]
    rms = getattr(nn, "RMSNorm", None)  # torch >= 2.4
    if isinstance(rms, type):
        types.append(rms)
    return tuple(types)


def split_param_groups(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter], list[nn.Parameter]]:
    """Split the trainable parameters of ``model`` into (decay weights, norm weights, biases).

    Args:
        model: the model (wrappers such as DistributedDataParallel are removed first).

    Returns:
        Three lists of parameters; together they hold every trainable parameter exactly once.
    """
    norm_types = _norm_types()
    decay: list[nn.Parameter] = []
    norm: list[nn.Parameter] = []
    bias: list[nn.Parameter] = []
    seen: set[int] = set()
    for module in de_parallel(model).modules():
        is_norm = isinstance(module, norm_types)
        for name, p in module.named_parameters(recurse=False):
            if not p.requires_grad or id(p) in seen:
                continue
            seen.add(id(p))
            if name == "bias":
                bias.append(p)
            elif is_norm:
                norm.append(p)
            else:
                decay.append(p)
    return decay, norm, bias


def _canonical_name(name: str) -> str:
    lookup = {n.lower(): n for n in OPTIMIZER_NAMES}
    key = str(name).strip().lower()
    if key not in lookup:
        raise ConfigError(f"optimizer={name!r} is not supported; valid names: {', '.join(OPTIMIZER_NAMES)}")
    return lookup[key]


def build_optimizer(
    model: nn.Module,
    name: str = "auto",
    lr: float = 0.01,
    momentum: float = 0.937,
    weight_decay: float = 5e-4,
    iterations: int = 100000,
    nc: int = 80,
) -> tuple[torch.optim.Optimizer, str, float]:
    """Build the optimizer with the three parameter groups described in the module docstring.

    Args:
        model: the model to optimize.
        name: ``"SGD"`` (Nesterov momentum; plain SGD when ``momentum == 0``), ``"Adam"``,
            ``"AdamW"`` (both with betas ``(momentum, 0.999)``)
            or ``"auto"`` (case-insensitive).
        lr: initial learning rate (ignored by ``"auto"``).
        momentum: SGD momentum / Adam beta1 (``"auto"`` uses 0.9).
        weight_decay: weight decay of group 0 (groups 1 and 2 get none).
        iterations: total optimizer iterations of the run (used by ``"auto"``).
        nc: number of classes (used by ``"auto"``).

    ``"auto"`` resolves to AdamW with ``lr = round(0.002 * 5 / (4 + nc), 6)`` and momentum 0.9 for
    runs of at most 10000 iterations, else to SGD with lr 0.01 and momentum 0.9. The trainer
    should read the momentum actually used with :func:`optimizer_momentum` (for warmup).

    Returns:
        ``(optimizer, resolved name, resolved lr)``.

    Raises:
        ConfigError: unknown optimizer name, or a model without trainable parameters.
    """
    resolved = _canonical_name(name)
    if resolved == "auto":
        if iterations > AUTO_SGD_ITERATIONS:
            resolved, lr, momentum = "SGD", 0.01, 0.9
        else:
            resolved, lr, momentum = "AdamW", round(0.002 * 5 / (4 + nc), 6), 0.9
        LOGGER.info(f"optimizer=auto: {resolved}(lr={lr}, momentum={momentum}) for {iterations} iterations")
    decay, norm, bias = split_param_groups(model)
    if not (decay or norm or bias):
        raise ConfigError(
            "the model has no trainable parameters (all have requires_grad=False); nothing to optimize"
        )
    groups = [
        {"params": decay, "weight_decay": float(weight_decay)},
        {"params": norm, "weight_decay": 0.0},
        {"params": bias, "weight_decay": 0.0},
    ]
    if resolved == "SGD":
        opt: torch.optim.Optimizer = torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=momentum > 0)
    else:
        adam = torch.optim.Adam if resolved == "Adam" else torch.optim.AdamW
        opt = adam(groups, lr=lr, betas=(momentum, 0.999), fused=fused_adam_supported(decay + norm + bias) or None)
    LOGGER.info(
        f"optimizer: {resolved}(lr={lr}, momentum={momentum}) with parameter groups "
        f"{len(decay)} weight(decay={weight_decay}), {len(norm)} norm weight(decay=0.0), "
        f"{len(bias)} bias(decay=0.0)"
    )
    return opt, resolved, float(lr)


def fused_adam_supported(params: list[nn.Parameter]) -> bool:
    """Whether torch's fused (single-kernel) Adam/AdamW can step ``params``.

    The fused kernels run on CUDA (torch >= 2.0) and on CPU (torch >= 2.4), for floating-point
    parameters all on one such device. On a 44.7M-parameter CPU model the fused AdamW step takes
    about a quarter of the time of the default per-tensor loop (bench/RESULTS.md).
    """
    devices = {p.device.type for p in params}
    if not params or len(devices) != 1 or not all(p.is_floating_point() for p in params):
        return False
    device = devices.pop()
    if device == "cuda":
        return True
    major, minor = (int(v) for v in re.findall(r"\d+", torch.__version__)[:2])
    return device == "cpu" and (major, minor) >= (2, 4)


def optimizer_momentum(optimizer: torch.optim.Optimizer) -> float:
    """Return the configured momentum: SGD ``momentum`` or Adam-family ``betas[0]``."""
    defaults = optimizer.defaults
    if "momentum" in defaults:
        return float(defaults["momentum"])
    if "betas" in defaults:
        return float(defaults["betas"][0])
    raise ValueError(f"{type(optimizer).__name__} has neither momentum nor betas")


def build_lr_lambda(epochs: int, lrf: float, cos: bool = False) -> Callable[[int], float]:
    """Return the learning-rate multiplier ``f(epoch)`` for ``torch.optim.lr_scheduler.LambdaLR``.

    ``f(0) = 1`` and ``f(epochs) = lrf``; linear: ``(1 - x / epochs) * (1 - lrf) + lrf``;
    cosine: ``((1 - cos(x * pi / epochs)) / 2) * (lrf - 1) + 1``.

    Raises:
        ConfigError: ``epochs < 1``.
    """
    if epochs < 1:
        raise ConfigError(f"epochs must be >= 1 to build a learning-rate schedule, got {epochs}")
    epochs_f = float(epochs)
    lrf = float(lrf)
    if cos:

        def cosine(x: int) -> float:
            return ((1.0 - math.cos(x * math.pi / epochs_f)) / 2.0) * (lrf - 1.0) + 1.0

        return cosine

    def linear(x: int) -> float:
        return (1.0 - x / epochs_f) * (1.0 - lrf) + lrf

    return linear


def warmup_iterations(warmup_epochs: float, nb: int, epochs: int) -> int:
    """Warmup length in iterations: ``warmup_epochs`` of ``nb`` batches, at least 100 (as the YOLO recipe), but
    never more than a third of the ``epochs * nb`` planned iterations, so that a short run (few epochs, or a
    ``time=`` budget) is not spent warming up. -1 (no warmup) when ``warmup_epochs <= 0``."""
    if warmup_epochs <= 0:
        return -1
    return max(1, min(max(round(warmup_epochs * nb), 100), epochs * nb // 3))


def warmup_step(
    optimizer: torch.optim.Optimizer,
    ni: int,
    nw: int,
    epoch: int,
    lr_lambda: Callable[[int], float],
    lr0: float,
    warmup_bias_lr: float,
    momentum: float,
    warmup_momentum: float,
) -> list[float]:
    """Set per-group lr (and momentum) for warmup iteration ``ni`` of ``nw``.

    Linear interpolation over ``ni in [0, nw]`` (``np.interp``, so values clamp at the ends):
    group 2 (biases) falls from ``warmup_bias_lr`` to ``lr0 * lr_lambda(epoch)``; the other groups
    rise from 0 to ``lr0 * lr_lambda(epoch)``; momentum (SGD ``momentum`` or Adam ``betas[0]``)
    rises from ``warmup_momentum`` to ``momentum``. Call it for ``ni <= nw`` only; afterwards the
    scheduler alone sets the lr.

    Args:
        optimizer: built by :func:`build_optimizer` (group 2 is the bias group).
        ni: integrated batch count since the start of training.
        nw: number of warmup iterations (``<= 0`` means no warmup: the end values are set).
        epoch: current epoch (argument of ``lr_lambda``).
        lr_lambda: schedule from :func:`build_lr_lambda`.
        lr0: initial learning rate (the optimizer's resolved lr).
        warmup_bias_lr: starting lr of the bias group.
        momentum: final momentum (use :func:`optimizer_momentum` of the optimizer).
        warmup_momentum: starting momentum.

    Returns:
        The lr now set on each group.
    """
    target = float(lr0) * float(lr_lambda(epoch))
    if nw <= 0:
        frac = 1.0
    else:
        frac = float(np.interp(ni, [0.0, float(nw)], [0.0, 1.0]))
    lrs: list[float] = []
    m = float(np.interp(frac, [0.0, 1.0], [warmup_momentum, momentum]))
    for j, group in enumerate(optimizer.param_groups):
        start = float(warmup_bias_lr) if j == 2 else 0.0
        group["lr"] = float(np.interp(frac, [0.0, 1.0], [start, target]))
        lrs.append(group["lr"])
        if "momentum" in group:
            group["momentum"] = m
        elif "betas" in group:
            group["betas"] = (m, group["betas"][1])
    return lrs
