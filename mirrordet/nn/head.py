"""The head contract: what the graph, the trainer, the validator, the predictor and the exporter may
rely on about a model's last layer, so that none of them probes a head with ``hasattr``.

Every head subclasses :class:`Head` and declares:

- ``task``: ``"detect"``, ``"segment"`` or ``"classify"`` (the trainer's task, the validator, the run folder).
- ``loss``: the key of its loss family in :mod:`mirrordet.losses.registry`.
- ``train_outputs``: names of the entries of its training-mode output list, in order; a name
  starting with ``*`` stands for all remaining entries (e.g. one map per feature level).
- ``traceable``: whether its eval output is a pure function of the input shape, so a traced or
  exported graph reproduces it (False for heads whose eval pass depends on the data, such as the
  number of proposals of a two-stage head).
- ``needs_targets``: whether its training forward takes the batch's targets,
  ``forward(x, targets)``, because it assigns and samples them itself (a two-stage head's RoIs, as
  torchvision's RoIHeads). ``ModelGraph.forward(x, targets)`` hands them over; losses only score.

``ModelGraph`` calls :meth:`Head.set_strides` once, after probing the input stride of each level
the head reads; heads with stride-dependent state (anchors, bias priors) set it up there.

Detection heads (:class:`DetectionHead`) turn their own eval output into one result type,
:class:`Detections` per image, in :meth:`DetectionHead.postprocess`: the validator and the
predictor never decode a head's output themselves. Segmentation heads are detection heads of task
``"segment"`` whose Detections carry ``masks`` (bool [n, H, W] at the network input).
:meth:`DetectionHead.postprocess_each` yields the same Detections one image at a time; heads whose
per-image results are large (masks: 300 detections of a 640 input are 120 MB) override it so that
only one image's masks exist at once, and the validator uses it. Classification
heads return softmax probabilities [B, nc] in eval mode.
"""

from __future__ import annotations

from typing import Any, ClassVar, Iterator

import torch
from torch import nn

from mirrordet.ops.detections import Detections
from mirrordet.ops.nms import NMSSettings

TASKS = ("detect", "segment", "classify")


class Head(nn.Module):
    """Base class of every head (see the module docstring for the declared attributes)."""

    task: ClassVar[str] = ""
    loss: ClassVar[str] = ""
    train_outputs: ClassVar[tuple[str, ...]] = ()
    traceable: ClassVar[bool] = True
    needs_targets: ClassVar[bool] = False

    def set_strides(self, strides: torch.Tensor) -> None:
        """Record the input stride [L] (pixels) of each level the head reads; called once by the graph.

        The default stores them in a ``stride`` buffer when the head has one, then calls
        :meth:`init_for_strides`.
        """
        if "stride" in self._buffers:
            self.stride = strides.detach().clone().to(self.stride)
        self.init_for_strides()

    def init_for_strides(self) -> None:
        """Initialize what depends on the strides (e.g. class-bias priors). Default: nothing."""


class DetectionHead(Head):
    """A head of the detect (or segment) task: owns the decoding of its eval output."""

    task = "detect"

    def postprocess(self, preds: Any, nms: NMSSettings) -> list[Detections]:
        """Eval-mode output -> one :class:`Detections` per image: scores above ``nms.conf``, only
        ``nms.classes`` when given, class-wise (or ``nms.agnostic``) NMS at ``nms.iou``, at most
        ``nms.max_det`` kept, best first."""
        raise NotImplementedError

    def postprocess_each(self, preds: Any, nms: NMSSettings) -> Iterator[Detections]:
        """The Detections of :meth:`postprocess`, image by image, in batch order. Default: iterate its list;
        heads with masks override it to decode one image's masks at a time (bounded memory)."""
        yield from self.postprocess(preds, nms)
