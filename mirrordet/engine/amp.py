"""Mixed precision: which autocast dtype a run trains in, from the ``amp`` setting and the device.

``amp=true`` (default): float16 autocast with a GradScaler on CUDA; off on CPU.
``amp=bf16``: bfloat16 autocast on CUDA or CPU, no GradScaler (bfloat16 has float32's range).
On a CPU without native bfloat16 instructions (oneDNN reports none, e.g. no AVX512-BF16/AMX)
bfloat16 would be emulated and slower than float32, so the run stays in float32 with a warning.
``amp=false``: float32 everywhere. Weights, optimizer state, EMA and validation stay float32.
"""

from __future__ import annotations

import contextlib

import torch

from mirrordet.utils.log import LOGGER

__all__ = ["amp_dtype", "autocast", "cpu_has_native_bf16"]


def cpu_has_native_bf16() -> bool:
    """Whether oneDNN runs bfloat16 natively on this CPU (False where torch cannot tell)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def amp_dtype(amp: bool | str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``amp`` on ``device``, or None for float32 training.

    Args:
        amp: the ``amp`` setting: True, False or ``"bf16"`` (validated by the settings checks).
        device: the training device.
    """
    if amp == "bf16":
        if device.type == "cuda" or (device.type == "cpu" and cpu_has_native_bf16()):
            return torch.bfloat16
        LOGGER.warning(f"amp=bf16: {device.type} has no native bfloat16 support here; training in float32")
        return None
    return torch.float16 if amp is True and device.type == "cuda" else None


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """``torch.autocast`` in ``dtype`` on ``device``, or a no-op context when ``dtype`` is None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
