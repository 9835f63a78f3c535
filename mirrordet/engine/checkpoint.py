"""Checkpoint files: atomic save, safe load, stripping for inference.

A checkpoint is a plain dict, saved with ``torch.save`` and loaded ONLY with
``torch.load(path, map_location="cpu", weights_only=True)``: loading never runs code from
the file. Anything the restricted unpickler refuses (objects that need imports, corrupt or
truncated files) raises :class:`CheckpointError`.

The layout is :class:`mirrordet.engine.checkpoint_format.Checkpoint` (``format ==
"mirrordet-ckpt-v1"``): the trainer writes ``Checkpoint(...).to_dict()``, readers validate with
``Checkpoint.from_dict`` and rebuild networks with :func:`mirrordet.engine.weights.rebuild_network`.

Only ``"model_yaml"`` and ``"model"`` are required to load a file. Every value must be made
of dicts, lists, tuples, str, int, float, bool, None and tensors: ``save_checkpoint`` checks
this before writing, so that a file it writes always loads (numpy scalars, ``pathlib.Path``
or namespaces must be converted by the caller, e.g. ``float(x)``, ``str(p)``, ``vars(ns)``).
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch

from mirrordet.engine.checkpoint_format import CKPT_FORMAT, REQUIRED_KEYS, TRAINING_STATE_KEYS, Checkpoint
from mirrordet.utils.errors import CheckpointError
from mirrordet.utils.files import atomic_save
from mirrordet.utils.safe_load import safe_torch_load

__all__ = [
    "CKPT_FORMAT",
    "REQUIRED_KEYS",
    "TRAINING_STATE_KEYS",
    "save_checkpoint",
    "load_checkpoint",
    "load_state_dict_checked",
    "cpu_state",
    "strip_for_inference",
]

_PLAIN_SCALARS = (str, int, float, bool, complex, bytes, type(None), torch.dtype, torch.device, torch.Size)


def _check_plain(obj: Any, where: str) -> None:
    """Raise CheckpointError if ``obj`` holds a value the weights-only loader would refuse."""
    if isinstance(obj, torch.Tensor) or type(obj) in _PLAIN_SCALARS:
        return
    if type(obj) in (dict, OrderedDict):
        for k, v in obj.items():
            if type(k) not in (str, int, float, bool, type(None), tuple):
                raise CheckpointError(
                    f"checkpoint entry {where} has a key of type {type(k).__name__}; use str or int keys"
                )
            _check_plain(v, f"{where}[{k!r}]")
        return
    if type(obj) in (list, tuple, set):
        for i, v in enumerate(obj):
            _check_plain(v, f"{where}[{i}]")
        return
    raise CheckpointError(
        f"checkpoint entry {where} is a {type(obj).__module__}.{type(obj).__qualname__}, "
        "which a weights-only load refuses; convert it to a plain type "
        "(float(x), int(x), str(path), dict(...), list(...)) before saving"
    )


def save_checkpoint(path: str | Path, ckpt: dict[str, Any]) -> Path:
    """Write ``ckpt`` to ``path`` atomically (streamed into a temp file, then renamed).

    Args:
        path: destination, e.g. ``runs/detect/train/exp/weights/last.pt``; folders are created.
        ckpt: the checkpoint dict (layout in the module docstring).

    Returns:
        The written path.

    Raises:
        CheckpointError: ``ckpt`` is not a dict, lacks a required key, or holds a value that
            ``torch.load(weights_only=True)`` would refuse (nothing is written then).
    """
    path = Path(path)
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"cannot save {path}: a checkpoint must be a dict, got {type(ckpt).__name__}")
    missing = [k for k in REQUIRED_KEYS if k not in ckpt]
    if missing:
        raise CheckpointError(f"cannot save {path}: checkpoint lacks required key(s) {missing}")
    _check_plain(ckpt, "ckpt")
    return atomic_save(path, lambda buf: torch.save(ckpt, buf))


def is_plain_state_dict(obj: Any) -> bool:
    """A non-empty dict of tensors keyed by names: the file of ``torch.save(model.state_dict())``."""
    if not isinstance(obj, dict):
        return False
    return bool(obj) and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint with ``torch.load(path, map_location="cpu", weights_only=True)`` only.

    The restricted unpickler never imports or calls anything named in the file, so a
    malicious payload cannot run. Before torch reads the file, its zip directory is checked
    against the size bounds of :mod:`mirrordet.utils.safe_load` (a small file that declares
    gigabytes is refused without decompressing anything).

    Args:
        path: a ``.pt`` file.

    Returns:
        The checkpoint dict (tensors on cpu).

    Raises:
        CheckpointError: missing file, a payload needing globals, a truncated/corrupt or
            oversized file, a payload that is not a dict (or is a plain state dict such as a
            TorchVision weights file), a dict lacking ``model_yaml`` or ``model``, entries of the
            wrong type, or an unknown ``format``. The message names the file.
    """
    path = Path(path)
    ckpt = safe_torch_load(path)
    parse_checkpoint(ckpt, path)
    return ckpt


def parse_checkpoint(ckpt: Any, path: str | Path) -> Checkpoint:
    """An already loaded payload as a :class:`Checkpoint` (the one validation of the format's keys and types).

    Raises:
        CheckpointError: as :func:`load_checkpoint`.
    """
    if not isinstance(ckpt, dict):
        raise CheckpointError(
            f"refusing to load checkpoint {path}: expected a dict, found {type(ckpt).__name__} "
            "(a bare model object is not a mirrordet checkpoint)"
        )
    missing = [k for k in REQUIRED_KEYS if k not in ckpt]
    if missing and is_plain_state_dict(ckpt):
        raise CheckpointError(
            f"refusing to load checkpoint {path}: it is a plain state dict ({len(ckpt)} tensors, e.g. "
            f"{', '.join(list(ckpt)[:3])}), such as a TorchVision weights file, not a mirrordet checkpoint "
            "(which holds the model YAML too); give it to a TorchVision backbone row as `weights`, or "
            "train with mirrordet to get a .pt"
        )
    return Checkpoint.from_dict(ckpt, path)


def load_state_dict_checked(net: torch.nn.Module, state: dict[str, Any], source: str | Path) -> None:
    """``net.load_state_dict(state)`` (strict) that fails with a CheckpointError naming the keys.

    Args:
        net: the network rebuilt from the checkpoint's own YAML.
        state: its state dict (name -> tensor).
        source: the file the state came from, named in the error.

    Raises:
        CheckpointError: keys missing from ``state``, unexpected keys, non-tensor values or
            shapes that differ from the network's; the first few of each are listed.
    """
    own = net.state_dict()
    problems = []
    missing = [k for k in own if k not in state]
    unexpected = [str(k) for k in state if k not in own]
    common = [k for k in own if k in state and isinstance(own[k], torch.Tensor)]
    not_tensor = [k for k in common if not isinstance(state[k], torch.Tensor)]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in common
              if isinstance(state[k], torch.Tensor) and state[k].shape != own[k].shape]
    for what, keys in (("missing", missing), ("unexpected", unexpected), ("not tensors", not_tensor),
                       ("wrong shapes (file vs model)", shapes)):
        if keys:
            more = f" and {len(keys) - 3} more" if len(keys) > 3 else ""
            problems.append(f"{len(keys)} {what}: {', '.join(keys[:3])}{more}")
    if problems:
        raise CheckpointError(
            f"checkpoint {source}: its weights do not fit the model built from its own YAML ("
            + "; ".join(problems) + ")"
        )
    try:
        net.load_state_dict(state)
    except (RuntimeError, TypeError, ValueError) as e:  # e.g. a dtype that cannot be copied
        first = str(e).strip().splitlines()[-1][:200] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"checkpoint {source}: its weights cannot be loaded into the model ({first})") from None


def cpu_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A detached CPU copy of a state dict for a checkpoint; floating tensors as float32."""
    return {k: v.detach().float().cpu().clone() if v.is_floating_point() else v.detach().cpu().clone()
            for k, v in state.items()}


def strip_for_inference(ckpt: dict[str, Any]) -> dict[str, Any]:
    """Return a shallow copy of ``ckpt`` with the training-only state removed.

    ``optimizer``, ``ema``, ``scaler`` and ``rng`` become ``None``; the model weights, YAML,
    names, settings and metadata are kept (e.g. for ``best.pt`` at the end of training).
    The input dict is not modified.
    """
    out = dict(ckpt)
    for key in TRAINING_STATE_KEYS:
        out[key] = None
    return out
