"""Cascade RPN: adaptive-convolution offsets, region-assigned first stage, and the head trained with it."""

from __future__ import annotations

import pytest
import torch
from torchvision.ops import deform_conv2d

from mirrordet.losses.registry import build_loss
from mirrordet.nn.graph import ModelGraph
from mirrordet.nn.modules.cascade_rpn import anchor_offsets, region_targets
from mirrordet.ops.anchor_boxes import grid_anchors
from mirrordet.ops.nms import NMSSettings
from mirrordet.utils.errors import ModelConfigError

STEM = "nc: 2\nbackbone:\n  - [-1, 1, Conv, [16, 3, 2]]\n  - [-1, 1, Conv, [32, 3, 2]]\n  - [-1, 1, Conv, [32, 3, 2]]\nhead:\n"


def _model(rpn: str) -> ModelGraph:
    torch.manual_seed(0)
    return ModelGraph(STEM + f"  - [-1, 1, RCNNHead, [nc, [32], [0.5, 1.0, 2.0], None, 32, [50, 20], None, {rpn}]]\n",
                      source="t")


def _batch(b: int = 2):
    return {"img": torch.zeros(b, 3, 64, 64), "cls": torch.ones(b, 1), "batch_idx": torch.arange(b).float(),
            "bboxes": torch.tensor([[0.5, 0.5, 0.5, 0.5]]).repeat(b, 1)}


def test_offsets_of_a_three_cell_anchor_are_zero_and_match_a_plain_conv():
    """An anchor covering exactly the 3x3 cells around its own cell samples the regular grid: zero offsets."""
    h = w = 5
    s = 8.0
    ii, jj = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
    anchors = torch.stack([(jj - 1) * s, (ii - 1) * s, (jj + 2) * s, (ii + 2) * s], -1).view(1, h * w, 4)
    off = anchor_offsets(anchors, h, w, s)
    assert off.shape == (1, 18, h, w) and off.abs().max() < 1e-5
    x, wt = torch.rand(1, 4, h, w), torch.rand(6, 4, 3, 3)
    assert torch.allclose(deform_conv2d(x, off, wt, padding=1), torch.nn.functional.conv2d(x, wt, padding=1), atol=1e-5)


def test_offsets_follow_a_shifted_anchor():
    """An anchor one cell to the right of the 3x3 neighbourhood shifts every sampling point by +1 in x."""
    s, h, w = 4.0, 4, 6
    ii, jj = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
    anchors = torch.stack([jj * s, (ii - 1) * s, (jj + 3) * s, (ii + 2) * s], -1).view(1, h * w, 4)
    off = anchor_offsets(anchors, h, w, s).view(1, 9, 2, h, w)
    assert torch.allclose(off[:, :, 1], torch.ones(1, 9, h, w)) and off[:, :, 0].abs().max() < 1e-5


def test_region_targets_pick_the_central_anchors_of_the_matching_level():
    shapes, strides, sizes = [(8, 8), (4, 4)], [8.0, 16.0], [16.0, 64.0]
    anchors = grid_anchors(shapes, strides, sizes, [1.0], [1.0])
    per_level = [64, 16]
    gt = torch.tensor([[4.0, 4.0, 20.0, 20.0], [0.0, 0.0, 60.0, 60.0]])  # ~16 px -> level 0, ~60 px -> level 1
    m = region_targets(gt, anchors, per_level, sizes)
    small, big = (m == 0).nonzero().flatten(), (m == 1).nonzero().flatten()
    assert small.numel() >= 1 and (small < 64).all()  # its anchors on level 0, at least the nearest one
    assert big.numel() >= 1 and (big >= 64).all()
    centers = (anchors[big, :2] + anchors[big, 2:]) / 2
    assert ((centers - 30.0).abs() <= 0.1 * 60 + 8).all()  # inside the central region (or the nearest cell)
    assert (region_targets(torch.zeros(0, 4), anchors, per_level, sizes) == -1).all()


def test_cascade_head_trains_both_stages_and_decodes():
    model = _model("cascade").train()
    out = model(torch.rand(2, 3, 64, 64), _batch())
    assert len(out) == 7 and model.head.train_outputs[-1] == "rpn_stage1"
    loss_fn = build_loss(model.head, {})
    assert loss_fn.names == ("rpn_obj", "rpn_box", "roi_cls", "roi_box", "rpn_box1")
    loss, items = loss_fn.evaluate(out, _batch(), 2)
    loss.backward()
    rpn = model.head.rpn
    assert torch.isfinite(loss) and items[4] > 0
    assert rpn.reg1.weight.grad.abs().sum() > 0 and rpn.conv2.weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        dets = model.head.postprocess(model(torch.rand(2, 3, 64, 64)), NMSSettings(0.0, 0.5, 7))
    assert len(dets) == 2 and all(len(d) <= 7 for d in dets)


def test_simple_variant_is_two_stacked_convs_and_standard_stays_as_it_was():
    assert len(_model("cascade-simple").head.rpn.conv) == 4  # conv, relu, conv, relu
    standard = _model("standard").head.rpn
    assert len(standard.conv) == 2 and not standard.stage1
    assert build_loss(_model("standard").head, {}).names == ("rpn_obj", "rpn_box", "roi_cls", "roi_box")


def test_unknown_rpn_is_a_row_error():
    with pytest.raises(ModelConfigError, match="rpn must be one of standard, conv2, cascade, cascade-simple"):
        _model("fancy")
