"""The YOLO-seg mask term: small when the coefficients pick the prototype that matches the ground-truth mask,
large when they pick its opposite, counted only inside the ground-truth box and normalized by its area."""

from __future__ import annotations

import torch

from mirrordet.losses.segment import SegmentationLoss
from mirrordet.losses.yolo import Assignment


def _case(inside_only: bool = False):
    """One image 32x32 (prototypes 8x8), one object filling rows/cols 8..23 (proto 2..5), two positive anchors."""
    masks = torch.zeros(1, 32, 32, dtype=torch.int16)
    masks[0, 8:24, 8:24] = 1
    target = torch.zeros(8, 8)
    target[2:6, 2:6] = 1
    proto = torch.stack([target * 20 - 10, 10 - target * 20])[None]  # [1, 2, 8, 8]: the mask and its opposite
    fg = torch.tensor([[True, True, False]])
    assigned = Assignment(fg, torch.zeros(1, 3, dtype=torch.long), torch.tensor([[[8.0, 8, 24, 24]] * 3]))
    return proto, masks, assigned


def test_matching_coefficients_score_near_zero_and_the_opposite_high():
    proto, masks, assigned = _case()
    good = torch.tensor([[[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]])  # [1, nm=2, A=3]: anchors 0, 1 take prototype 0
    bad = torch.tensor([[[0.0, 0.0, 1.0], [1.0, 1.0, 0.0]]])
    low = SegmentationLoss.mask_loss(good, proto, masks, assigned)
    high = SegmentationLoss.mask_loss(bad, proto, masks, assigned)
    assert low < 1e-3 and high > 9.0  # per pixel ~10 nats where wrong, averaged over the box


def test_pixels_outside_the_box_do_not_count():
    proto, masks, assigned = _case()
    coef = torch.tensor([[[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]])
    wild = proto.clone()
    wild[0, 0, 0, 0] = 50.0  # a confident wrong pixel outside the box (proto pixel 0, 0)
    assert torch.allclose(SegmentationLoss.mask_loss(coef, wild, masks, assigned),
                          SegmentationLoss.mask_loss(coef, proto, masks, assigned))


def test_no_positive_keeps_the_graph_with_zero_loss():
    proto, masks, assigned = _case()
    coef = torch.zeros(1, 2, 3, requires_grad=True)
    empty = Assignment(torch.zeros(1, 3, dtype=torch.bool), assigned.gt_index, assigned.boxes)
    loss = SegmentationLoss.mask_loss(coef, proto.requires_grad_(), masks, empty)
    loss.backward()
    assert loss.item() == 0.0 and coef.grad is not None
