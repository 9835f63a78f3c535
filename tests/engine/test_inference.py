"""InferenceRunner: eager first, a verified frozen trace for repeated shapes, eager again if a trace is wrong."""

import pytest
import torch
from torch import nn

from mirrordet.engine.inference import InferenceRunner, prepare_model, weights_stamp
from mirrordet.nn.fuse import is_fused
from mirrordet.nn.graph import build_model

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


class WidthConstant(nn.Module):
    """Not trace-safe: a Python int taken from the input shape becomes a constant in a trace."""

    def forward(self, x):
        return x * float(x.shape[-1])


def test_trace_used_after_second_call_and_matches():
    model = build_model("yolov8n-mirror.yaml", nc=3)
    net = prepare_model(model, torch.device("cpu"), half=False, fast=True)
    assert is_fused(net) and not is_fused(model)  # the source model is left untouched
    runner = InferenceRunner(net, trace_after=2)
    x = torch.rand(1, 3, 64, 96).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        a = runner(x)
        assert runner.traced is None  # one call: eager only
        b = runner(x)
        assert runner.traced is not None and len(runner.verified) == 1
        c = runner(x)  # served by the trace
        y = torch.rand(2, 3, 96, 64)
        d, e = runner(y), runner(y)  # a new shape is verified on its own before the trace serves it
        ref = net(y)
    assert len(runner.verified) == 2
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(c, a, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(d, ref)
    torch.testing.assert_close(e, ref)


def test_wrong_trace_falls_back_to_eager():
    runner = InferenceRunner(WidthConstant(), trace=True, trace_after=2)
    x8, x4 = torch.ones(1, 1, 2, 8), torch.ones(1, 1, 2, 4)
    with torch.inference_mode():
        runner(x8), runner(x8)
        assert runner.traced is not None  # traced and verified at width 8
        runner(x4)
        out = runner(x4)  # the trace gives 8 here: detected, dropped
    assert runner.traced is None and not runner.trace_enabled
    assert torch.equal(out, x4 * 4)
    with torch.inference_mode():
        assert torch.equal(runner(x8), x8 * 8)


def test_default_waits_for_a_recurring_shape():
    runner = InferenceRunner(WidthConstant(), trace=True)
    x = torch.ones(1, 1, 2, 3)
    with torch.inference_mode():
        for _ in range(runner.trace_after - 1):
            runner(x)
        assert runner.traced is None
        runner(x)
    assert runner.traced is not None and runner.verified


def test_weights_stamp_changes_on_in_place_updates():
    model = build_model("yolov8n-cls.yaml", nc=2)
    s0 = weights_stamp(model)
    assert weights_stamp(model) == s0
    with torch.no_grad():
        next(model.parameters()).add_(1)
    assert weights_stamp(model) != s0


def test_calls_at_different_shapes_build_the_trace_and_each_shape_is_checked_at_its_second_call():
    model = build_model("yolov8n.yaml", nc=2)
    net = prepare_model(model, torch.device("cpu"), half=False, fast=True)
    runner = InferenceRunner(net, trace_after=3)
    shapes = [(64, 96), (96, 64), (64, 64)]  # a folder of photos: a few letterboxed shapes
    xs = [torch.rand(1, 3, h, w).contiguous(memory_format=torch.channels_last) for h, w in shapes]
    with torch.inference_mode():
        runner(xs[0]), runner(xs[1])
        assert runner.traced is None
        runner(xs[2])  # the third call, at a shape seen once: built and checked at it
        assert runner.traced is not None and runner.verified == {((1, 3, 64, 64), torch.float32, "cpu")}
        runner(torch.rand(1, 3, 32, 160))  # a shape seen once: eager, not checked
        assert len(runner.verified) == 1
        out = runner(xs[0])  # second call at 64 x 96: checked, then served by the trace
        ref = net(xs[0])
    assert len(runner.verified) == 2
    torch.testing.assert_close(out, ref)
