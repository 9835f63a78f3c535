"""The inference copy of a model: fused, channels-last, and (once a predictor has been busy) a frozen trace.

:func:`prepare_model` makes a deep copy of a :class:`~mirrordet.nn.graph.ModelGraph` with
Conv+BN folded (:func:`mirrordet.nn.fuse.fuse`). :class:`InferenceRunner` runs it: the first
``trace_after - 1`` calls (at any input shapes) run the eager module; the next call traces the module once with
``torch.jit.trace`` + ``torch.jit.freeze`` (weights become constants, the per-layer Python dispatch disappears;
about 15% less CPU time for yolov8n at 640 on CPU). One trace serves every input shape, but each shape only after
the trace's output matched the eager output on it: the shape it was built at at once, any other shape at its
second call (a stream of ever new shapes never pays for a check). A trace that fails or disagrees is dropped for
good and the eager module is used (one log line says so). Tracing costs about six eager forward passes, so short
runs never pay for it, while videos, folders of photos (at imgsz 640 the common aspect ratios letterbox to a few
shapes) and repeated API calls run the trace.
"""

from __future__ import annotations

import copy
import warnings
from typing import Any

import torch
from torch import nn

from mirrordet.nn.fuse import fuse
from mirrordet.nn.graph import ModelGraph
from mirrordet.nn.modules.conv import Conv
from mirrordet.utils.log import LOGGER

TRACE_TOLERANCE = 1e-4  # |trace - eager| <= 1e-4 * max(1, |eager|), element-wise
TRACE_AFTER = 16  # calls (any shapes) before the trace is built


def prepare_model(model: nn.Module, device: torch.device, half: bool, fast: bool = False) -> nn.Module:
    """An inference copy of ``model``: deep-copied, Conv+BN fused, eval mode, no gradients, on ``device``.

    ``fast`` (prediction) also makes the activations of fused Conv modules in-place (their input is
    always a fresh conv output) and stores the weights channels-last (NHWC), which oneDNN / cuDNN
    convolutions run without layout conversions; inputs are then fed channels-last too.
    """
    net = fuse(copy.deepcopy(model)).requires_grad_(False).to(device)
    if half:
        net = net.half()
    if fast:
        for m in net.modules():
            if isinstance(m, Conv) and isinstance(m.act, nn.SiLU):
                m.act.inplace = True
        net = net.to(memory_format=torch.channels_last)
    return net


def weights_stamp(model: nn.Module, tensors: list[torch.Tensor] | None = None) -> tuple[int, int]:
    """A cheap fingerprint that changes whenever a parameter or buffer of ``model`` is modified in place.

    (id of the module, sum of the tensors' autograd version counters); used to reuse an inference
    copy across ``predict`` calls until the weights change (training, ``load_state_dict``).
    ``tensors`` (the model's parameters and buffers, listed once by the caller) skips walking the
    module tree, which costs milliseconds per call.
    """
    if tensors is None:
        tensors = [*model.parameters(), *model.buffers()]
    return id(model), sum(t._version for t in tensors)


def _close(ref: Any, got: Any) -> bool:
    if isinstance(ref, torch.Tensor):
        if not isinstance(got, torch.Tensor) or got.shape != ref.shape or got.dtype != ref.dtype:
            return False
        r, g = ref.float(), got.float()
        return bool(((g - r).abs() <= TRACE_TOLERANCE * r.abs().clamp(min=1)).all())
    if isinstance(ref, (list, tuple)):
        return isinstance(got, (list, tuple)) and len(got) == len(ref) and all(map(_close, ref, got))
    return False


class InferenceRunner:
    """Callable ``x [B, 3, H, W] -> model output`` over an inference copy (see the module docstring).

    Args:
        net: the eager inference module (eval mode, e.g. from :func:`prepare_model`).
        trace: allow the frozen trace (False = always eager). None (default): the head's
            ``traceable`` (False for heads whose eval pass may depend on the data, e.g. the number
            of proposals, which a trace would freeze).
        trace_after: the call count (all shapes together) that builds the trace.
    """

    def __init__(self, net: ModelGraph, trace: bool | None = None, trace_after: int = TRACE_AFTER) -> None:
        self.net = net
        if trace is None:
            trace = net.head.traceable
        self.trace_enabled, self.trace_after = trace, max(1, int(trace_after))
        self.traced: torch.jit.ScriptModule | None = None
        self.calls = 0
        self.seen: dict[tuple, int] = {}
        self.verified: set[tuple] = set()

    def __call__(self, x: torch.Tensor) -> Any:
        if not self.trace_enabled:
            return self.net(x)
        key = (tuple(x.shape), x.dtype, str(x.device))
        if key in self.verified:
            return self.traced(x)
        self.calls += 1
        self.seen[key] = self.seen.get(key, 0) + 1
        ref = self.net(x)
        due = self.calls >= self.trace_after if self.traced is None else self.seen[key] >= 2
        if due:
            self._try_trace(x, ref, key)  # build (once) and verify at this shape
        return ref

    def _try_trace(self, x: torch.Tensor, ref: Any, key: tuple) -> None:
        why = None
        try:
            with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
                for category in (torch.jit.TracerWarning, FutureWarning, DeprecationWarning, UserWarning):
                    warnings.simplefilter("ignore", category)
                xc = x.clone()  # an ordinary (non-inference) tensor for the tracer
                if self.traced is None:
                    self.traced = torch.jit.freeze(torch.jit.trace(self.net, xc, check_trace=False).eval())
                if not _close(ref, self.traced(xc)):
                    why = f"it does not reproduce the eager outputs at input {list(key[0])}"
        except Exception as e:  # TorchScript failures come in many types; the eager model stays correct
            why = f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0][:120]}"
        if why is None:
            self.verified.add(key)
        else:
            LOGGER.info(f"TorchScript trace not used ({why}); predicting with the eager model")
            self.trace_enabled, self.traced = False, None
