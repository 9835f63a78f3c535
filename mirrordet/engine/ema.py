"""Exponential moving average (EMA) of a model's weights and buffers.

The average is kept in a separate copy of the model that is used for validation and saved
as the checkpoint's weights. The effective decay ramps up from 0 so that early updates,
made while the weights still change quickly, are not dominated by the random initialization:

    d(n) = decay * (1 - exp(-n / tau))        n = number of updates so far (after increment)
    ema  = d * ema + (1 - d) * model          for every floating-point state-dict entry

Floating-point buffers (e.g. BatchNorm ``running_mean`` / ``running_var``) are averaged like
parameters; integer buffers (e.g. ``num_batches_tracked``) are copied.
"""

from __future__ import annotations

import math
from copy import deepcopy
from typing import Any

import torch
from torch import nn

from mirrordet.engine.checkpoint import load_state_dict_checked
from mirrordet.utils.torch_utils import de_parallel

__all__ = ["ModelEMA"]


class ModelEMA:
    """EMA of a model's state dict.

    Args:
        model: the model being trained (may be wrapped in DataParallel/DistributedDataParallel).
        decay: asymptotic decay.
        tau: ramp time constant in updates (optimizer steps).
        updates: number of updates already made (non-zero when resuming).

    Attributes:
        ema: the averaged copy, in eval mode with ``requires_grad`` False everywhere.
        updates: number of updates made so far.
    """

    def __init__(self, model: nn.Module, decay: float = 0.9999, tau: float = 2000, updates: int = 0) -> None:
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"EMA decay must lie in [0, 1], got {decay}")
        if tau <= 0:
            raise ValueError(f"EMA tau must be > 0, got {tau}")
        self.ema: nn.Module = deepcopy(de_parallel(model)).eval()
        for p in self.ema.parameters():
            p.requires_grad_(False)
        self.decay = float(decay)
        self.tau = float(tau)
        self.updates = int(updates)

    def current_decay(self, updates: int | None = None) -> float:
        """Return d(n) for ``n = updates`` (default: the current count)."""
        n = self.updates if updates is None else updates
        return self.decay * (1.0 - math.exp(-n / self.tau))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Fold the current weights of ``model`` (wrapped or bare) into the average.

        Raises:
            KeyError: ``model`` lacks an entry of the EMA state dict (a different architecture).
        """
        self.updates += 1
        d = self.current_decay()
        src = de_parallel(model).state_dict()
        for name, ema_v in self.ema.state_dict().items():
            v = src[name].detach()
            if ema_v.dtype.is_floating_point:
                ema_v.mul_(d).add_(v.to(device=ema_v.device, dtype=ema_v.dtype), alpha=1.0 - d)
            else:
                ema_v.copy_(v)

    def state_dict(self) -> dict[str, Any]:
        """Return ``{"ema": state dict of the averaged model, "updates": int, "decay": float, "tau": float}``.

        Tensors are live views of the EMA model; serialize (or copy) before the next update.
        """
        return {
            "ema": self.ema.state_dict(),
            "updates": int(self.updates),
            "decay": self.decay,
            "tau": self.tau,
        }

    def load_state_dict(self, state: dict[str, Any], source: str = "EMA state") -> None:
        """Restore weights and the update count written by :meth:`state_dict`.

        ``decay``/``tau`` stored in ``state`` are ignored: the values given to the
        constructor (the current settings) win.

        Raises:
            CheckpointError: the weights do not fit the model (missing keys, wrong shapes), naming ``source``.
        """
        load_state_dict_checked(self.ema, state["ema"], source)
        self.updates = int(state.get("updates", 0))


class NoEMA:
    """Stand-in when ``ema=False``: validation and checkpoints use the raw weights."""

    def __init__(self, model: nn.Module) -> None:
        self.ema, self.updates = model, 0

    def update(self, model: nn.Module) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        """``{"ema": the raw weights, "updates": 0}`` (the layout of ``ModelEMA.state_dict``)."""
        return {"ema": self.ema.state_dict(), "updates": 0}

    def load_state_dict(self, state: dict[str, Any], source: str = "weights") -> None:
        load_state_dict_checked(self.ema, state["ema"], source)
