"""Run folders: runs/<task>/<mode>/<name>/ with auto-incremented names, created atomically."""

from __future__ import annotations

from pathlib import Path

from mirrordet.utils.errors import ConfigError

MAX_RUN_NAMES = 10_000  # name, name2, ... name10000: past that, a clear error instead of a long scan


def _candidates(path: Path):
    yield path
    for n in range(2, MAX_RUN_NAMES + 1):
        yield Path(f"{path}{n}")


def run_dir(task: str, mode: str, project: str | None, name: str | None, exist_ok: bool) -> Path:
    """Create and return the folder of a run (``project`` defaults to ``runs/<task>/<mode>``).

    Raises:
        ConfigError: see :func:`claim_dir`.
    """
    root = Path(project) if project else Path("runs") / task / mode
    return claim_dir(root / (name or mode), exist_ok)


def claim_dir(base: Path, exist_ok: bool) -> Path:
    """Create ``base`` (or, if taken, ``base2``, ``base3``, ...) and return it; ``exist_ok`` reuses ``base``.

    The folder is claimed with one ``mkdir`` that fails if it exists, so two processes starting
    at the same instant never share a folder: the loser takes the next free name.

    Raises:
        ConfigError: the folder cannot be created (read-only or full disk), or every name is taken.
    """
    root = base.parent
    try:
        root.mkdir(parents=True, exist_ok=True)
        if exist_ok:
            base.mkdir(exist_ok=True)
            return base
        for path in _candidates(base):
            try:
                path.mkdir()
                return path
            except FileExistsError:
                continue
    except OSError as e:
        raise ConfigError(f"cannot create the run folder {base}: {e.strerror}; set project=... to a writable folder") from None
    raise ConfigError(f"{MAX_RUN_NAMES} run folders named {base}* exist; pass name=... or clean up {root}")


def resume_run_dir(last_pt: Path) -> Path:
    """The run folder of a ``.../weights/last.pt`` given to resume: the folder the file lives in.

    A resumed run always writes next to the checkpoint it was given, never to a folder stored
    inside that checkpoint (a copied run folder is continued in place; the original is untouched).
    """
    folder = Path(last_pt).absolute().parent
    return folder.parent if folder.name == "weights" else folder


def latest_last_pt(project: str | None = None) -> Path:
    """The most recently written ``weights/last.pt`` under ``project`` (default ``runs/``), for ``resume=True``.

    Raises:
        ConfigError: there is none.
    """
    root = Path(project) if project else Path("runs")
    found = [p for p in root.glob("**/weights/last.pt") if p.is_file()] if root.is_dir() else []
    if not found:
        raise ConfigError(f"resume=True found no weights/last.pt under {root}; pass model=<run>/weights/last.pt")
    return max(found, key=lambda p: p.stat().st_mtime)
