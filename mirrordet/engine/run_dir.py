"""Run folders: runs/<task>/<mode>/<name>/ with auto-incremented names."""

from __future__ import annotations

from pathlib import Path

from mirrordet.utils.files import increment_path


def run_dir(task: str, mode: str, project: str | None, name: str | None, exist_ok: bool) -> Path:
    """Create and return the folder of a run (``project`` defaults to ``runs/<task>/<mode>``).

    Raises:
        ConfigError: the folder cannot be created (read-only or full disk).
    """
    from mirrordet.utils.errors import ConfigError

    root = Path(project) if project else Path("runs") / task / mode
    path = increment_path(root / (name or mode), exist_ok=exist_ok)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot create the run folder {path}: {e.strerror}; set project=... to a writable folder") from None
    return path
