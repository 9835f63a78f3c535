"""Checkpoint files: atomic save, safe load, stripping for inference.

A checkpoint is a plain dict, saved with ``torch.save`` and loaded ONLY with
``torch.load(path, map_location="cpu", weights_only=True)``: loading never runs code from
the file. Anything the restricted unpickler refuses (objects that need imports, corrupt or
truncated files) raises :class:`CheckpointError`.

Layout (``format == "mirrordet-ckpt-v1"``; the trainer builds the dict)::

    {
        "format": "mirrordet-ckpt-v1",
        "model_yaml": str,            # the architecture YAML text (rebuilt with the parser)
        "model_cfg": dict,            # build options, e.g. {"scale": "n", "nc": 80}
        "names": {int: str} | list,   # class names
        "model": state_dict,          # EMA (or plain) weights, float32 tensors on cpu
        "ema": dict | None,           # ModelEMA.state_dict() (EMA weights + "updates")
        "optimizer": state_dict | None,
        "scaler": state_dict | None,  # torch.amp.GradScaler state
        "epoch": int,                 # last completed epoch
        "best_fitness": float | None,
        "train_args": dict,           # plain settings (str/int/float/bool/None/list/dict)
        "rng": dict | None,           # mirrordet.utils.torch_utils.get_rng_state()
        "date": str,                  # ISO 8601
        "version": str,               # mirrordet.__version__
    }

Only ``"model_yaml"`` and ``"model"`` are required to load a file. Every value must be made
of dicts, lists, tuples, str, int, float, bool, None and tensors: ``save_checkpoint`` checks
this before writing, so that a file it writes always loads (numpy scalars, ``pathlib.Path``
or namespaces must be converted by the caller, e.g. ``float(x)``, ``str(p)``, ``vars(ns)``).
"""

from __future__ import annotations

import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch

from mirrordet.utils.errors import CheckpointError
from mirrordet.utils.files import atomic_save

__all__ = [
    "CKPT_FORMAT",
    "REQUIRED_KEYS",
    "TRAINING_STATE_KEYS",
    "save_checkpoint",
    "load_checkpoint",
    "strip_for_inference",
]

CKPT_FORMAT = "mirrordet-ckpt-v1"
REQUIRED_KEYS: tuple[str, ...] = ("model_yaml", "model")
# Entries only needed to resume training; strip_for_inference sets them to None.
TRAINING_STATE_KEYS: tuple[str, ...] = ("optimizer", "ema", "scaler", "rng", "train_weights")

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


def _reason(exc: BaseException) -> str:
    """One-line cause of a failed weights-only load."""
    text = str(exc)
    marker = "WeightsUnpickler error:"
    if marker in text:
        text = text.split(marker, 1)[1]
        text = text.split(" Please use", 1)[0]  # drop torch's advice on allow-listing globals
        detail = " ".join(text.split()).rstrip(".")
        return f"it contains objects outside the allowed plain types ({detail})"
    corrupt = "zip archive" in text or "central directory" in text
    if corrupt or isinstance(exc, (EOFError, zipfile.BadZipFile)):
        return "the file is truncated or corrupt"
    first = text.strip().splitlines()[0] if text.strip() else ""
    detail = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return f"it is not a readable torch checkpoint ({detail})"


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint with ``torch.load(path, map_location="cpu", weights_only=True)`` only.

    The restricted unpickler never imports or calls anything named in the file, so a
    malicious payload cannot run.

    Args:
        path: a ``.pt`` file.

    Returns:
        The checkpoint dict (tensors on cpu).

    Raises:
        CheckpointError: missing file, a payload needing globals, a truncated/corrupt file,
            a payload that is not a dict, a dict lacking ``model_yaml`` or ``model``, or an
            unknown ``format``. The message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist (or is not a file)")
    try:
        ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, KeyError, TypeError,
            AttributeError, IndexError, zipfile.BadZipFile, UnicodeDecodeError, MemoryError) as exc:
        raise CheckpointError(
            f"refusing to load checkpoint {path}: {_reason(exc)}. mirrordet loads checkpoints only with "
            "torch.load(weights_only=True) and never executes code from a file; re-create the checkpoint "
            "with mirrordet from a trusted source"
        ) from None
    except Exception as exc:  # any other loader failure is still a refusal, never a fallback
        raise CheckpointError(f"refusing to load checkpoint {path}: {_reason(exc)}") from None
    if not isinstance(ckpt, dict):
        raise CheckpointError(
            f"refusing to load checkpoint {path}: expected a dict, found {type(ckpt).__name__} "
            "(a bare state_dict or model object is not a mirrordet checkpoint)"
        )
    missing = [k for k in REQUIRED_KEYS if k not in ckpt]
    if missing:
        raise CheckpointError(
            f"refusing to load checkpoint {path}: required key(s) {missing} missing "
            f"(found keys {sorted(map(str, ckpt))[:12]}); is it a mirrordet checkpoint?"
        )
    fmt = ckpt.get("format", CKPT_FORMAT)
    if fmt != CKPT_FORMAT:
        raise CheckpointError(
            f"refusing to load checkpoint {path}: unknown format {fmt!r} (expected {CKPT_FORMAT!r})"
        )
    if not isinstance(ckpt["model_yaml"], str):
        raise CheckpointError(f"refusing to load checkpoint {path}: 'model_yaml' must be the YAML text (str)")
    if not isinstance(ckpt["model"], dict):
        raise CheckpointError(f"refusing to load checkpoint {path}: 'model' must be a state dict")
    return ckpt


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
