"""What the training loop carries between iterations: its counters, its parts, and its epoch plan.

The trainer's settings stay read-only; everything that changes while a run goes on lives here:
:class:`LoopState` (the counters a resume restores), :class:`RunParts` (what set-up builds, returned
explicitly) and :class:`EpochPlan` (the number of epochs and the LR schedule ending at the last one,
which the ``time=`` budget may re-fit).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from mirrordet.engine.optim import build_lr_lambda, warmup_iterations
from mirrordet.losses.base import Loss


@dataclass
class LoopState:
    """Counters of the training loop.

    Attributes:
        epoch: the current epoch (0-based); an interrupt reports ``epoch + 1``.
        start_epoch: the first epoch of this session (the resumed one, or 0).
        best_fitness: best validation fitness so far (None before the first validation).
        last_opt_step: global iteration of the last optimizer step (-1: none yet).
        accumulate: batches whose gradients are summed per optimizer step.
        bad_steps: consecutive non-finite losses.
        prior_train_time: training seconds of the sessions this one resumes.
    """

    epoch: int = 0
    start_epoch: int = 0
    best_fitness: float | None = None
    last_opt_step: int = -1
    accumulate: int = 1
    bad_steps: int = 0
    prior_train_time: float = 0.0


@dataclass
class RunParts:
    """Everything set-up builds for a run (see ``Trainer._build_parts``)."""

    train_set: Any
    train_loader: Any
    validator: Any  # None on DDP ranks other than 0
    criterion: Loss
    optimizer: torch.optim.Optimizer
    opt_name: str
    lr0: float
    momentum: float
    scaler: torch.amp.GradScaler
    ema: Any  # ModelEMA, or the no-EMA stand-in
    train_model: nn.Module  # the model, DDP-wrapped when distributed
    batch: int  # per rank


class EpochPlan:
    """The number of epochs to train and the LR multiplier schedule that ends at the last one.

    Args:
        epochs: epochs to train. lrf: final LR fraction. cos_lr: cosine (else linear) decay.
    """

    def __init__(self, epochs: int, lrf: float, cos_lr: bool) -> None:
        self.epochs, self.lrf, self.cos_lr = int(epochs), float(lrf), bool(cos_lr)
        self.lr_lambda: Callable[[int], float] = build_lr_lambda(self.epochs, self.lrf, self.cos_lr)
        self.warmup_iters = -1  # iterations of warmup (-1: none); set once the loader's length is known
        self.warmup_epochs, self.nb = 0.0, 0

    def set_warmup(self, warmup_epochs: float, nb: int) -> None:
        """Plan the warmup for ``nb`` batches per epoch (:func:`warmup_iterations` of the planned epochs)."""
        self.warmup_epochs, self.nb = float(warmup_epochs), int(nb)
        self.warmup_iters = warmup_iterations(self.warmup_epochs, self.nb, self.epochs)

    def refit(self, total: int, done: int, optimizer: torch.optim.Optimizer,
              scheduler: torch.optim.lr_scheduler.LambdaLR) -> bool:
        """Train ``total`` epochs in all (``done`` are finished); returns whether the plan changed.

        When epochs remain, the schedule is rebuilt to end at the new last epoch and the LR of the
        next epoch is set from it. A warmup still running is shortened to a third of the new plan (ending at
        the next iteration at the latest); it never grows, and a finished warmup never restarts.
        """
        if total == self.epochs:
            return False
        self.epochs = int(total)
        start_next = done * self.nb
        if self.warmup_iters > start_next:
            self.warmup_iters = max(min(self.warmup_iters, warmup_iterations(self.warmup_epochs, self.nb, total)),
                                    start_next)
        if total > done:
            self.lr_lambda = build_lr_lambda(self.epochs, self.lrf, self.cos_lr)
            scheduler.lr_lambdas = [self.lr_lambda] * len(optimizer.param_groups)
            for group, base in zip(optimizer.param_groups, scheduler.base_lrs):
                group["lr"] = base * self.lr_lambda(scheduler.last_epoch)
        return True
