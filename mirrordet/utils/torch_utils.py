"""Torch helpers: device selection, seeding, model unwrapping, parameter counts, RNG state.

Everything here acts on the arguments it is given; settings arrive as plain arguments,
never from global configuration.
"""

from __future__ import annotations

import os
import random
from typing import Any

import numpy as np
import torch
from torch import nn

from mirrordet.utils.errors import ConfigError

__all__ = [
    "select_device",
    "init_seeds",
    "de_parallel",
    "model_param_counts",
    "get_rng_state",
    "set_rng_state",
]

_CPU_NAMES = ("", "cpu")


def _parse_cuda_indices(spec: str) -> list[int]:
    """Parse ``"0"``, ``"0,1"``, ``"cuda"``, ``"cuda:1"`` into CUDA device indices.

    Raises:
        ConfigError: the string is not one of these forms.
    """
    s = spec.strip().lower().replace(" ", "")
    if s == "cuda":
        return [0]
    s = s.removeprefix("cuda:")
    parts = [p for p in s.split(",") if p != ""]
    if not parts or not all(p.isdigit() for p in parts):
        raise ConfigError(
            f"device={spec!r} is not understood: use 'cpu', a CUDA index such as '0', "
            "a list such as '0,1', or 'cuda:0'"
        )
    return [int(p) for p in parts]


def select_device(device: str | int | None = None) -> torch.device:
    """Resolve a ``device`` setting to one ``torch.device``.

    Args:
        device: ``None`` (CUDA device 0 when CUDA is available, else CPU), ``"cpu"``,
            an index (``0`` or ``"0"``), a list of indices ``"0,1"`` (the first is returned;
            multi-GPU launching is handled elsewhere), ``"cuda"`` or ``"cuda:N"``.

    Returns:
        The device for this process.

    Raises:
        ConfigError: a CUDA device is requested but CUDA is unavailable, the index is out of
            range, or the string cannot be parsed.
    """
    if device is None:
        return torch.device("cuda:0") if torch.cuda.is_available() else torch.device("cpu")
    if isinstance(device, torch.device):
        device = str(device)
    if isinstance(device, bool):  # bool is an int subclass; True/False is never a device
        raise ConfigError(f"device={device!r} is not understood: use 'cpu' or a CUDA index such as '0'")
    if isinstance(device, int):
        indices = [device]
        spec = str(device)
    else:
        spec = str(device)
        if spec.strip().lower() in _CPU_NAMES:
            return torch.device("cpu")
        if spec.strip().lower() == "mps":
            if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
                return torch.device("mps")
            raise ConfigError("device='mps' requested but MPS is not available here; use device=cpu")
        indices = _parse_cuda_indices(spec)
    if any(i < 0 for i in indices):
        raise ConfigError(f"device={spec!r}: CUDA indices must be >= 0")
    if not torch.cuda.is_available():
        raise ConfigError(
            f"device={spec!r} requests CUDA, but CUDA is not available here "
            f"(torch {torch.__version__} built with CUDA {torch.version.cuda or 'none'}, "
            f"{torch.cuda.device_count()} device(s) visible); use device=cpu, or run on a machine with a "
            "GPU and a CUDA build of torch"
        )
    count = torch.cuda.device_count()
    bad = [i for i in indices if i >= count]
    if bad:
        raise ConfigError(
            f"device={spec!r}: CUDA index {bad[0]} is out of range; this machine has {count} CUDA device(s) "
            f"(valid indices 0..{count - 1})"
        )
    return torch.device(f"cuda:{indices[0]}")


def init_seeds(seed: int = 0, deterministic: bool = False) -> None:
    """Seed python ``random``, numpy's global generator and torch (CPU and all CUDA devices).

    Args:
        seed: the seed.
        deterministic: when True, ask torch for deterministic kernels
            (``torch.use_deterministic_algorithms(True, warn_only=True)``), disable cuDNN
            autotuning and set ``CUBLAS_WORKSPACE_CONFIG`` (needed by deterministic cuBLAS).
            When False, these switches are turned back off.
    """
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    if deterministic:
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = ":4096:8"
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    else:
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.deterministic = False


def de_parallel(model: nn.Module) -> nn.Module:
    """Return the bare module inside DataParallel / DistributedDataParallel / torch.compile wrappers."""
    while True:
        if isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
            model = model.module
            continue
        inner = getattr(model, "_orig_mod", None)  # torch.compile's OptimizedModule
        if isinstance(inner, nn.Module):
            model = inner
            continue
        return model


def model_param_counts(model: nn.Module) -> tuple[int, int]:
    """Return ``(number of parameters, number of trainable parameters)`` (shared tensors counted once)."""
    params = grads = 0
    for p in de_parallel(model).parameters():  # .parameters() already de-duplicates shared tensors
        n = p.numel()
        params += n
        if p.requires_grad:
            grads += n
    return params, grads


def get_rng_state() -> dict[str, Any]:
    """Capture python ``random``, numpy's global generator and torch CPU/CUDA generator states.

    The result holds only dicts, lists, ints, floats, strings, ``None`` and tensors, so it
    survives ``torch.save`` + ``torch.load(weights_only=True)``.

    Returns:
        ``{"python": {"version", "state": list[int], "gauss_next"},
        "numpy": {"kind", "keys": int64 tensor [624], "pos", "has_gauss", "cached_gaussian"},
        "torch": uint8 tensor, "cuda": list of uint8 tensors (empty without CUDA)}``.
    """
    py_version, py_state, py_gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    cuda_states: list[torch.Tensor] = []
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        cuda_states = [t.clone() for t in torch.cuda.get_rng_state_all()]
    return {
        "python": {"version": int(py_version), "state": [int(v) for v in py_state], "gauss_next": py_gauss},
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64).copy()),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state().clone(),
        "cuda": cuda_states,
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore generator states captured by :func:`get_rng_state`.

    Missing entries are skipped. CUDA states are restored for the devices present on both
    sides (a checkpoint from a GPU machine restores fine on a CPU-only one).

    Raises:
        ValueError: an entry has the wrong layout.
    """
    py = state.get("python")
    if py is not None:
        random.setstate((int(py["version"]), tuple(int(v) for v in py["state"]), py["gauss_next"]))
    npst = state.get("numpy")
    if npst is not None:
        keys = npst["keys"]
        keys = keys.numpy() if isinstance(keys, torch.Tensor) else np.asarray(keys)
        np.random.set_state(
            (
                str(npst["kind"]),
                keys.astype(np.uint32),
                int(npst["pos"]),
                int(npst["has_gauss"]),
                float(npst["cached_gaussian"]),
            )
        )
    cpu = state.get("torch")
    if cpu is not None:
        torch.set_rng_state(torch.as_tensor(cpu, dtype=torch.uint8).cpu())
    cuda_states = state.get("cuda") or []
    if cuda_states and torch.cuda.is_available():
        for i, s in enumerate(cuda_states[: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(torch.as_tensor(s, dtype=torch.uint8).cpu(), device=i)
