"""Package logger: plain messages on stderr, no global configuration of the root logger."""

from __future__ import annotations

import logging
import sys

LOGGER = logging.getLogger("mirrordet")


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at emit time (so redirections and captures work)."""

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def setup_logging(verbose: bool = True) -> None:
    """Attach one stream handler to the package logger (idempotent)."""
    if not any(getattr(h, "_mirrordet", False) for h in LOGGER.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler._mirrordet = True  # type: ignore[attr-defined]
        LOGGER.addHandler(handler)
        LOGGER.propagate = False
    LOGGER.setLevel(logging.INFO if verbose else logging.WARNING)
