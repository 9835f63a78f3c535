"""The one guarded ``torch.load``: size bounds checked on the zip first, weights-only, clear refusals.

Every ``.pt`` / ``.pth`` file mirrordet reads (its own checkpoints, a TorchVision state dict
named in a model YAML) goes through :func:`safe_torch_load`. Before torch sees the file:

- it must be a zip archive, the format ``torch.save`` writes since PyTorch 1.6 (the legacy
  raw-pickle format declares storage sizes that torch allocates before reading, so it is refused);
- its central directory is read with :mod:`zipfile` (nothing is decompressed) and refused when
  it declares more than :data:`MAX_ENTRIES` members, more than :data:`MAX_PICKLE_BYTES` of
  ``data.pkl``, or a total uncompressed size above ``MAX_EXPANSION * file size + SLACK_BYTES``
  or above :data:`MAX_TOTAL_BYTES`. ``torch.save`` stores members uncompressed, so a genuine
  file declares about its own size; a few kilobytes that inflate to gigabytes do not pass.

Then ``torch.load(weights_only=True)`` runs, which never imports or calls anything the file
names; its refusals are rewritten into one line that names the blocked Python object and never
repeats torch's advice to turn the protection off.
"""

from __future__ import annotations

import pickletools
import re
import warnings
import zipfile
from pathlib import Path
from typing import Any, Iterator

import torch

from mirrordet.utils.errors import CheckpointError

MAX_EXPANSION = 4  # declared uncompressed bytes per byte of file (torch.save writes 1:1)
SLACK_BYTES = 1 << 20  # plus this much, so tiny files are not refused for their headers
MAX_TOTAL_BYTES = 16 << 30  # 16 GiB absolute cap on the declared uncompressed size
MAX_ENTRIES = 100_000  # one member per tensor storage; large detectors have a few thousand
MAX_PICKLE_BYTES = 32 << 20  # data.pkl holds structure only; mirrordet's are ~100 KB

_GLOBAL_RE = re.compile(r"GLOBAL ([\w.]+)")
_ZIP_MAGIC = b"PK\x03\x04"


def pickle_globals(data: bytes) -> Iterator[str]:
    """``module.name`` of every global a pickle asks for, in order (read with pickletools, never run); a damaged
    pickle ends the sequence where it stops parsing."""
    strings: list[str] = []
    try:
        for op, arg, _ in pickletools.genops(data):
            if op.name == "GLOBAL" and isinstance(arg, str):
                yield arg.replace(" ", ".")
            elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                yield f"{strings[-2]}.{strings[-1]}"
            if isinstance(arg, str):
                strings.append(arg)
    except Exception:  # noqa: BLE001 - a damaged pickle simply names no more globals
        return


def _first_pickle_global(data: bytes) -> str | None:
    """``module.name`` of the first global a raw pickle asks for (read with pickletools, never run)."""
    return next(pickle_globals(data), None)


def _refuse(path: Path, why: str) -> CheckpointError:
    return CheckpointError(f"refusing to load checkpoint {path}: {why}")


def check_zip_bounds(path: Path) -> None:
    """Refuse ``path`` unless it is a torch zip archive whose declared sizes fit the bounds above.

    Raises:
        CheckpointError: not a zip (legacy or raw pickle, garbage), a damaged archive, no
            ``data.pkl``, or a declared size / member count over the bounds.
    """
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(1 << 20)
    if not head.startswith(_ZIP_MAGIC):
        if head[:1] == b"\x80":
            glob = _first_pickle_global(head)
            need = f"; it needs the Python object {glob}, which mirrordet never runs" if glob else ""
            raise _refuse(path, "it is a raw pickle, not the zip format torch.save writes (PyTorch >= 1.6)"
                                f"{need}")
        raise _refuse(path, "it is not a torch checkpoint (not a zip archive as written by torch.save)")
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except Exception:  # noqa: BLE001 - zipfile raises many types on damaged archives
        raise _refuse(path, "the file is truncated or corrupt (unreadable zip directory)") from None
    if len(infos) > MAX_ENTRIES:
        raise _refuse(path, f"it declares {len(infos)} archive members (at most {MAX_ENTRIES} are read)")
    pkl = [i for i in infos if i.filename.endswith("data.pkl")]
    if not pkl:
        raise _refuse(path, "it is a zip archive without data.pkl, not a torch checkpoint")
    big_pkl = max(i.file_size for i in pkl)
    if big_pkl > MAX_PICKLE_BYTES:
        raise _refuse(path, f"its data.pkl declares {big_pkl} bytes (at most {MAX_PICKLE_BYTES} are read)")
    total = sum(i.file_size for i in infos)
    bound = min(MAX_EXPANSION * size + SLACK_BYTES, MAX_TOTAL_BYTES)
    if total > bound:
        raise _refuse(path, f"its members declare {total} bytes uncompressed from a {size}-byte file "
                            f"(at most {bound} are read: {MAX_EXPANSION} x the file size + 1 MiB, "
                            f"capped at {MAX_TOTAL_BYTES >> 30} GiB)")


def _reason(exc: BaseException) -> str:
    """One-line cause of a failed weights-only load, without torch's advice to disable it."""
    text = str(exc)
    m = _GLOBAL_RE.search(text)
    if m:
        return (f"it needs the Python object {m.group(1)}, which a weights-only load does not run "
                "(mirrordet loads checkpoints with weights_only=True)")
    if "WeightsUnpickler error" in text:
        detail = " ".join(text.split("WeightsUnpickler error:", 1)[1].split("Check the documentation")[0].split())
        return f"its pickle holds something a weights-only load refuses ({detail or 'unknown opcode'})"
    if isinstance(exc, (EOFError, zipfile.BadZipFile)) or "zip archive" in text or "central directory" in text:
        return "the file is truncated or corrupt"
    first = text.strip().splitlines()[0][:200] if text.strip() else ""
    detail = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return f"it is not a readable torch checkpoint ({detail})"


def safe_torch_load(path: str | Path) -> Any:
    """``torch.load(path, map_location="cpu", weights_only=True)`` after :func:`check_zip_bounds`.

    Args:
        path: a ``.pt`` / ``.pth`` file written by ``torch.save``.

    Returns:
        Whatever the file holds (plain containers and cpu tensors only).

    Raises:
        CheckpointError: missing file, out-of-bounds or non-zip file, anything the weights-only
            unpickler refuses, a truncated or corrupt file. The message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist (or is not a file)")
    check_zip_bounds(path)
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": the refusal says enough
            warnings.simplefilter("ignore")
            return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - every loader failure is a refusal, never a fallback
        raise _refuse(path, _reason(exc)) from None
