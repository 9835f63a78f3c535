"""The checkpoint format: one dataclass that the trainer writes, the loader reads and the docs describe.

A checkpoint file is ``Checkpoint.to_dict()`` saved with ``torch.save`` (plain data only: dicts,
lists, str, numbers, None and tensors), read back with ``torch.load(weights_only=True)`` and
:meth:`Checkpoint.from_dict`. Files written before this class existed have the same keys and load
unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

import torch

from mirrordet.utils.errors import CheckpointError

CKPT_FORMAT = "mirrordet-ckpt-v1"
REQUIRED_KEYS: tuple[str, ...] = ("model_yaml", "model")
# Entries only needed to resume training; strip_for_inference sets them to None.
TRAINING_STATE_KEYS: tuple[str, ...] = ("optimizer", "ema", "scaler", "rng", "train_weights")


@dataclass
class Checkpoint:
    """One checkpoint (``format == "mirrordet-ckpt-v1"``).

    Attributes:
        model_yaml: the architecture YAML text (rebuilt with the parser).
        model: state dict of the weights to use (EMA when training kept one), float32 on cpu.
        model_cfg: build options, ``{"scale": str | None, "nc": int}``.
        names: {class index: name}, or None.
        train_weights: state dict of the raw (non-EMA) training weights, to resume.
        ema: ``{"updates": int}``, the EMA's update count, to resume.
        optimizer: the optimizer's state dict, to resume. scaler: the GradScaler's (AMP) state dict.
        epoch: the last completed epoch (1-based count). best_fitness: best validation fitness so far.
        train_args: the run's settings (plain values). rng: random generator states.
        train_time: seconds of training so far (the ``time=`` budget). date: ISO 8601. version: mirrordet's.
        fingerprint: the run's recipe fingerprint (engine/fingerprint.py; "" for files written before it).
    """

    model_yaml: str
    model: dict[str, torch.Tensor]
    model_cfg: dict[str, Any] = field(default_factory=dict)
    names: dict[int, str] | None = None
    train_weights: dict[str, torch.Tensor] | None = None
    ema: dict[str, Any] | None = None
    optimizer: dict[str, Any] | None = None
    scaler: dict[str, Any] | None = None
    epoch: int = 0
    best_fitness: float | None = None
    train_args: dict[str, Any] = field(default_factory=dict)
    rng: dict[str, Any] | None = None
    train_time: float = 0.0
    date: str = ""
    version: str = ""
    fingerprint: str = ""

    @property
    def resumable(self) -> bool:
        """Whether the file holds the training state a resume needs."""
        return self.optimizer is not None and self.train_weights is not None

    def to_dict(self) -> dict[str, Any]:
        """The plain dict ``torch.save`` writes, ``"format"`` first (the order of the documented layout)."""
        d: dict[str, Any] = {"format": CKPT_FORMAT}
        for name in ("model_yaml", "model_cfg", "names", "model", "train_weights", "ema", "optimizer", "scaler",
                     "epoch", "best_fitness", "train_args", "rng", "train_time", "date", "version", "fingerprint"):
            d[name] = getattr(self, name)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str | Path = "checkpoint") -> "Checkpoint":
        """Validate a loaded file's dict and build the dataclass (unknown keys are ignored).

        Raises:
            CheckpointError: missing ``model_yaml``/``model``, an unknown ``format``, or an entry of
                the wrong type. The message names ``source``.
        """
        why = _problem(d)
        if why:
            raise CheckpointError(f"refusing to load checkpoint {source}: {why}")
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in d.items() if k in known and v is not None}
        names = d.get("names")
        if isinstance(names, list):
            kwargs["names"] = dict(enumerate(names))
        kwargs["model_cfg"] = dict(d.get("model_cfg") or {})
        kwargs["train_args"] = dict(d.get("train_args") or {})
        return cls(**kwargs)


def _problem(d: Mapping[str, Any]) -> str:
    """What makes ``d`` not a checkpoint of this format ("" when nothing)."""
    missing = [k for k in REQUIRED_KEYS if k not in d]
    if missing:
        return (f"required key(s) {missing} missing (found keys {sorted(map(str, d))[:12]}); "
                "is it a mirrordet checkpoint?")
    fmt = d.get("format", CKPT_FORMAT)
    if fmt != CKPT_FORMAT:
        return f"unknown format {str(fmt)[:40]!r} (expected {CKPT_FORMAT!r})"
    if not isinstance(d["model_yaml"], str):
        return "'model_yaml' must be the YAML text (str)"
    if not isinstance(d["model"], dict):
        return "'model' must be a state dict"
    if not isinstance(d.get("model_cfg") or {}, dict):
        return "'model_cfg' must be a dict"
    names = d.get("names")
    if names is not None and not (
        (isinstance(names, dict) and all(isinstance(k, int) and isinstance(v, str) for k, v in names.items()))
        or (isinstance(names, list) and all(isinstance(v, str) for v in names))
    ):
        return "'names' must be a list of str or {int: str}"
    epoch = d.get("epoch", 0)
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
        return f"'epoch' must be a non-negative int, got {type(epoch).__name__}"
    for key in ("train_args", "ema", "optimizer", "scaler", "rng", "train_weights"):
        if d.get(key) is not None and not isinstance(d[key], dict):
            return f"'{key}' must be a dict, got {type(d[key]).__name__}"
    if not isinstance(d.get("fingerprint", ""), str):
        return "'fingerprint' must be a str"
    for key in ("best_fitness", "train_time"):
        v = d.get(key)
        if v is not None and (not isinstance(v, (int, float)) or isinstance(v, bool)):
            return f"'{key}' must be a number, got {type(v).__name__}"
    return ""
