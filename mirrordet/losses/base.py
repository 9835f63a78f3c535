"""The loss contract: a training loss returns named, weighted terms and owns their reduction.

Every loss the trainer uses is a :class:`Loss`:

- ``names``: the term names, fixed before the first batch (results.csv columns ``train/<name>``).
- ``loss(preds, batch) -> dict[str, Tensor]``: one differentiable scalar per name, in that order,
  each already multiplied by its gain. The trainer backpropagates ``loss.total(terms)``, the sum
  of the terms (times the DDP world size for ``"sum"`` losses), and logs
  ``loss.per_image_means(terms, batch_size)``.
- ``set_progress(epoch, epochs)``: called by the trainer before every epoch (0-based ``epoch`` of ``epochs``,
  resumed runs included); losses whose weighting follows a schedule over training (the progressive one-to-many /
  one-to-one balance of end-to-end heads) set it there. The default does nothing.
- ``reduction``: ``"sum"`` when each term is summed over the images of the batch (detection: a
  per-image mean times the batch size, so gradients keep the global-batch scale when DDP averages
  them over ``world_size`` ranks); ``"mean"`` when each term is already a batch mean
  (classification).

``preds`` is the head's training output and ``batch`` the task's targets (``cls``, ``bboxes``
normalized xywh, ``batch_idx``, ``img`` for detection; ``cls`` for classification).
"""

from __future__ import annotations

from typing import Any, ClassVar, Mapping

import torch

from mirrordet.utils.errors import MirrordetError

REDUCTIONS = ("sum", "mean")


class Loss:
    """Base class of training losses; subclasses set ``names`` and implement :meth:`terms`.

    Attributes:
        names: term names, in the order :meth:`terms` returns them.
        reduction: ``"sum"`` (over the batch's images) or ``"mean"`` (batch mean).
        world_size: DDP processes; ``"sum"`` losses scale their total by it.
    """

    names: ClassVar[tuple[str, ...]] = ()
    reduction: ClassVar[str] = "sum"
    world_size: int = 1

    def terms(self, preds: Any, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The weighted terms of one batch: ``{name: scalar}`` for every name in ``names``."""
        raise NotImplementedError

    def set_progress(self, epoch: int, epochs: int) -> None:
        """Called before every epoch with the 0-based ``epoch`` of ``epochs`` in all (a time budget may re-fit
        ``epochs``); a pure function of the two, so a resumed run continues the same schedule."""

    def __call__(self, preds: Any, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """:meth:`terms`, checked against ``names``."""
        out = self.terms(preds, batch)
        if tuple(out) != tuple(self.names):
            raise MirrordetError(f"{type(self).__name__} returned terms {list(out)}, but declares {list(self.names)}")
        return out

    def total(self, terms: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The scalar to backpropagate: the sum of ``terms`` (x ``world_size`` for ``"sum"`` losses)."""
        loss = sum(terms.values())
        if self.reduction == "sum" and self.world_size != 1:
            loss = loss * self.world_size  # DDP averages gradients over ranks; keep the global-batch scale
        return loss

    def per_image_means(self, terms: Mapping[str, torch.Tensor], batch_size: int) -> torch.Tensor:
        """[len(names)] detached terms on the per-image (batch-mean) scale, for logging."""
        values = torch.stack([t.detach() for t in terms.values()])
        return values / batch_size if self.reduction == "sum" else values

    def evaluate(self, preds: Any, batch: Mapping[str, torch.Tensor], batch_size: int
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """One batch as the trainer sees it: (:meth:`total` to backpropagate, :meth:`per_image_means`)."""
        terms = self(preds, batch)
        return self.total(terms), self.per_image_means(terms, batch_size)


def check_loss(loss: Any) -> None:
    """Raise MirrordetError unless ``loss`` honours the contract's declared attributes."""
    if not isinstance(loss, Loss):
        raise MirrordetError(f"{type(loss).__name__} is not a mirrordet.losses.base.Loss")
    names = loss.names
    if not names or not all(isinstance(n, str) and n for n in names) or len(set(names)) != len(names):
        raise MirrordetError(f"{type(loss).__name__}.names must be distinct non-empty strings, got {names!r}")
    if loss.reduction not in REDUCTIONS:
        raise MirrordetError(f"{type(loss).__name__}.reduction must be one of {REDUCTIONS}, got {loss.reduction!r}")
