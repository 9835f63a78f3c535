"""Training callbacks: user functions the trainer calls at documented events (rank 0 only).

Every callback is called as ``fn(trainer, **details)`` and should accept ``**kwargs`` (events may gain
details). The trainer (:class:`mirrordet.engine.trainer.Trainer`) exposes ``save_dir``, ``cfg``, ``model``,
``state`` (``epoch``, ``best_fitness``, ...) and ``plan`` (``epochs``). Events and their details:

==========================  ============================================================================
``on_train_start``          (none): the run folder exists, nothing is trained yet
``on_epoch_start``          ``epoch`` (0-based)
``on_batch_end``            ``epoch``, ``batch`` (index), ``losses`` ({name: running mean})
``on_val_end``              ``epoch``, ``metrics`` (the validator's dict; after each epoch's validation)
``on_epoch_end``            ``epoch``, ``losses`` ({name: epoch mean}), ``metrics``, ``lr`` (group 0)
``on_checkpoint_saved``     ``epoch``, ``path`` (last.pt, best.pt or epochN.pt, once written atomically)
``on_train_end``            ``metrics`` (the final validation of best.pt)
==========================  ============================================================================

An exception raised by a callback stops the run like any other error (last.pt keeps the last epoch).
"""

from __future__ import annotations

import difflib
from typing import Any, Callable

from mirrordet.utils.errors import ConfigError

EVENTS: tuple[str, ...] = ("on_train_start", "on_epoch_start", "on_batch_end", "on_val_end", "on_epoch_end",
                           "on_checkpoint_saved", "on_train_end")
Callback = Callable[..., Any]


class Callbacks:
    """Event -> the functions to call, in the order they were added."""

    def __init__(self) -> None:
        self._fns: dict[str, list[Callback]] = {e: [] for e in EVENTS}

    def add(self, event: str, fn: Callback) -> None:
        """Register ``fn`` for ``event``.

        Raises:
            ConfigError: an unknown event (with the closest names) or a ``fn`` that is not callable.
        """
        if event not in self._fns:
            close = difflib.get_close_matches(str(event), EVENTS, n=2)
            hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
            raise ConfigError(f"unknown callback event {event!r}{hint} (events: {', '.join(EVENTS)})")
        if not callable(fn):
            raise ConfigError(f"a callback must be callable, got {type(fn).__name__}")
        self._fns[event].append(fn)

    def run(self, event: str, trainer: Any, **details: Any) -> None:
        """Call every function of ``event`` with ``(trainer, **details)``."""
        for fn in self._fns[event]:
            fn(trainer, **details)

    def copy(self) -> "Callbacks":
        """A new registry with the same functions (a run adds its own loggers without touching the original)."""
        out = Callbacks()
        for event, fns in self._fns.items():
            out._fns[event] = list(fns)
        return out

    def __bool__(self) -> bool:
        return any(self._fns.values())


class RunLogger:
    """Base of the loggers that follow a run (TensorBoard, MLflow): :meth:`start`, :meth:`epoch_end` and :meth:`end`
    are called at ``on_train_start``, ``on_epoch_end`` and ``on_train_end`` once :meth:`attach` registered them."""

    def attach(self, callbacks: Callbacks) -> "RunLogger":
        callbacks.add("on_train_start", self.start)
        callbacks.add("on_epoch_end", self.epoch_end)
        callbacks.add("on_train_end", self.end)
        return self

    def start(self, trainer: Any, **details: Any) -> None:
        """The run folder exists; open the log."""

    def epoch_end(self, trainer: Any, **details: Any) -> None:
        """One epoch's scalars (``epoch``, ``losses``, ``metrics``, ``lr``)."""

    def end(self, trainer: Any, **details: Any) -> None:
        """The run has ended (final files written); close the log."""
