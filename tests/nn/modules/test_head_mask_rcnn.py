"""Mask R-CNN: torchvision's parameter count, mask targets resampled onto RoIs, masks pasted inside their boxes."""

from __future__ import annotations

import torch

from mirrordet.nn.graph import build_model
from mirrordet.nn.modules.head_mask_rcnn import MaskRCNNHead
from mirrordet.ops.nms import NMSSettings


def test_maskrcnn_r50_fpn_has_torchvisions_parameter_count():
    import torchvision

    tv = torchvision.models.detection.maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=91)
    with torch.device("meta"):
        ours = build_model("maskrcnn-r50-fpn.yaml", nc=90)  # 90 classes + background
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in tv.parameters()) == 44_454_513


def test_mask_targets_are_the_ground_truth_resampled_onto_each_roi():
    index_map = torch.zeros(64, 64, dtype=torch.int16)
    index_map[16:48, 8:40] = 1  # instance 0
    index_map[0:10, 50:64] = 2  # instance 1
    boxes = torch.tensor([[8.0, 16, 40, 48], [8.0, 16, 24, 48], [50.0, 0, 64, 10]])
    t = MaskRCNNHead._mask_targets(index_map, torch.tensor([0, 0, 1]), boxes)
    assert t.shape == (3, 28, 28)
    assert t[0].mean() > 0.95 and t[1].mean() > 0.95 and t[2].mean() > 0.95  # each RoI lies inside its mask
    shifted = MaskRCNNHead._mask_targets(index_map, torch.tensor([0]), torch.tensor([[24.0, 16, 56, 48]]))
    assert 0.4 < shifted.mean() < 0.6  # half of this RoI is off the object


def test_eval_masks_lie_inside_their_boxes():
    torch.manual_seed(0)
    model = build_model("mask-rcnn-csp-eca.yaml", nc=3).eval()
    with torch.no_grad():
        dets = model.head.postprocess(model(torch.rand(2, 3, 96, 96)), NMSSettings(0.0, 0.5, 8))
    for d in dets:
        assert d.masks.shape == (len(d), 96, 96) and d.masks.dtype == torch.bool
        for m, (x1, y1, x2, y2) in zip(d.masks, d.boxes.tolist()):
            ys, xs = m.nonzero(as_tuple=True)
            if len(xs):
                assert xs.min() >= x1 - 2 and xs.max() <= x2 + 1 and ys.min() >= y1 - 2 and ys.max() <= y2 + 1
