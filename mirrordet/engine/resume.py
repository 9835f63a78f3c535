"""Resuming a run: the settings it continues with, and what a stopped run leaves behind (one line)."""

from __future__ import annotations

import errno
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from mirrordet.engine.checkpoint import load_checkpoint, parse_checkpoint
from mirrordet.engine.checkpoint_format import Checkpoint
from mirrordet.engine.run_dir import latest_last_pt
from mirrordet.utils.errors import (ConfigError, DataLoaderWorkerError, MirrordetError, RunStorageError,
                                    TrainingInterrupted)
from mirrordet.utils.log import LOGGER
from mirrordet.utils.safe_load import safe_torch_load

# Settings a resumed run may change: where and how fast it runs, never what it computes.
RESUME_KEEPS = ("device", "workers", "batch")

# Write failures that are the storage's fault, not the program's: reported in one line, never a traceback.
STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT, errno.EIO})


def resume_hint(wdir: Path) -> str:
    """``"<wdir>/last.pt holds epoch N: continue with `mirrordet train resume=True model=...`"``.

    Or, before the first checkpoint, that no weights were saved.
    """
    last = Path(wdir) / "last.pt"
    if not last.is_file():
        return f"no checkpoint was written yet ({last.parent.parent} holds no weights)"
    try:
        done = int(load_checkpoint(last)["epoch"])
    except (MirrordetError, KeyError, TypeError, ValueError):
        return f"{last} could not be read back"
    return f"{last} holds epoch {done}: continue with `mirrordet train resume=True model={last}`"


@contextmanager
def resumable_failures(wdir: Path, epoch: Callable[[], int]) -> Iterator[None]:
    """Turn the failures a run survives into one-line errors that say what last.pt holds and how to resume:
    Ctrl-C (:class:`TrainingInterrupted`), a full or read-only disk (:class:`RunStorageError`) and a dead
    data-loading worker (:class:`DataLoaderWorkerError`). ``epoch()`` gives the 1-based epoch that was running."""
    try:
        yield
    except KeyboardInterrupt:
        raise TrainingInterrupted(f"in epoch {epoch()}; {resume_hint(wdir)}") from None
    except OSError as e:
        if e.errno not in STORAGE_ERRNOS:
            raise
        raise RunStorageError(f"cannot write {e.filename or wdir.parent}: {e.strerror}; {resume_hint(wdir)}") from None
    except RuntimeError as e:
        if "DataLoader worker" not in str(e):
            raise
        raise DataLoaderWorkerError(f"a data-loading worker died in epoch {epoch()} ({str(e).splitlines()[0][:160]}); "
                                    f"if it ran out of memory, lower workers= or batch=. {resume_hint(wdir)}") from None


def resume_settings(overrides: Mapping[str, Any]) -> tuple[dict[str, Any], Checkpoint]:
    """(settings, checkpoint) of ``resume=True``: the run's own settings from its last.pt.

    ``model=<run>/weights/last.pt`` names the run; without a ``.pt`` model, the newest last.pt
    under ``project`` (default runs/) is taken. Only :data:`RESUME_KEEPS` may be changed; other
    settings given are ignored with a warning. The run folder is where the last.pt lives, so the
    stored ``save_dir``, ``project``, ``name`` and ``exist_ok`` are dropped.

    Raises:
        ConfigError: no last.pt found, or the file holds no training state (stripped for inference).
        CheckpointError: the file cannot be loaded.
    """
    path = overrides.get("model")
    if not path or Path(str(path)).suffix != ".pt":
        path = latest_last_pt(overrides.get("project"))
        LOGGER.info(f"resume=True: continuing the newest run, {path}")
    ckpt = parse_checkpoint(safe_torch_load(Path(path)), path)
    args = dict(ckpt.train_args)
    if not ckpt.resumable or "save_dir" not in args:
        raise ConfigError(f"{path} holds no training state (it was stripped for inference); resume from last.pt")
    ignored = sorted(k for k in overrides if k not in (*RESUME_KEEPS, "model", "resume", "project"))
    if ignored:
        LOGGER.warning(f"resume continues the run with its own settings; ignoring {', '.join(ignored)}")
    for k in ("save_dir", "project", "name", "exist_ok"):
        args.pop(k, None)
    keep = {k: overrides[k] for k in RESUME_KEEPS if k in overrides}
    return {**args, **keep, "model": str(path), "resume": True}, ckpt
