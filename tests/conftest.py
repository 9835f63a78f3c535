"""Shared test settings and fixtures.

One intra-op thread: the suite runs many tiny forward passes, for which OpenMP spin-waiting
across threads costs far more than it gains on a 2-core machine (subprocess tests pin their
own thread count where results must match across runs).
"""

from __future__ import annotations

from typing import Callable, Sequence

import pytest
import torch

from mirrordet.cli import main

torch.set_num_threads(1)


@pytest.fixture
def one_line_error(capfd) -> Callable[..., str]:
    """``one_line_error(argv, contains=None)``: the CLI's error contract for a bad input.

    Runs ``mirrordet.cli.main(argv)`` in-process and asserts exit code 2, exactly one non-empty
    stderr line and no traceback (capfd sees the real file descriptors, so library and worker
    output counts too). ``contains`` is a case-insensitive substring the line must hold.
    ``after_log=True`` is for failures in the middle of a run (training that already printed its
    progress): then the error must be the last line and the only ``error:`` line.
    Returns the error line.
    """

    def check(argv: Sequence[str], contains: str | None = None, after_log: bool = False) -> str:
        capfd.readouterr()  # drop anything printed before
        code = main(list(argv))
        err = capfd.readouterr().err
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert code == 2, f"exit {code}, stderr:\n{err}"
        assert "Traceback" not in err, err
        if after_log:
            errors = [ln for ln in lines if ": error: " in ln]
            assert len(errors) == 1 and lines[-1] == errors[0], f"expected one final error line:\n{err}"
            lines = errors
        assert len(lines) == 1, f"expected one error line, got {len(lines)}:\n{err}"
        if contains is not None:
            assert contains.lower() in lines[0].lower(), lines[0]
        return lines[0]

    return check
