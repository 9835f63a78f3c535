"""The project's own exception types: every user-facing failure is one of these."""

from __future__ import annotations


class MirrordetError(Exception):
    """Base class of every error mirrordet raises on purpose (bad input, bad files)."""


class ConfigError(MirrordetError, ValueError):
    """A bad setting: unknown key, wrong type, out-of-range value, unparsable CLI argument."""


class ModelConfigError(MirrordetError, ValueError):
    """A model YAML that cannot be built; the message names the file and the row."""


class RegistryError(MirrordetError, KeyError):
    """Unknown or duplicate registry name."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class DatasetError(MirrordetError, ValueError):
    """A dataset YAML, split or label set that cannot be used."""


class CheckpointError(MirrordetError, ValueError):
    """A checkpoint that cannot be loaded safely."""


class ExportError(MirrordetError, RuntimeError):
    """An export that failed, or whose file does not reproduce the PyTorch outputs."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) during training; the message says what last.pt holds and how to resume.

    A KeyboardInterrupt, so code that stops on Ctrl-C still stops; the CLI prints the message
    and exits 130.
    """


class RunStorageError(MirrordetError, OSError):
    """The run folder could not be written (disk full, read-only, no permission); earlier files are intact."""


class DataLoaderWorkerError(MirrordetError, RuntimeError):
    """A data-loading worker process died (killed, e.g. for memory) during training."""
