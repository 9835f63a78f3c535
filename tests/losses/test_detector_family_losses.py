"""RetinaNet, FCOS and Faster R-CNN losses: assignment rules, values, gradients."""

import math

import pytest
import torch

from mirrordet.losses.fcos import FCOSLoss, centerness, fcos_assign
from mirrordet.losses.registry import build_loss
from mirrordet.losses.retina import RetinaLoss
from mirrordet.nn.graph import ModelGraph
from mirrordet.ops.anchor_boxes import encode_boxes, sample_balanced
from mirrordet.ops.nms import NMSSettings

STEM = "nc: 2\nbackbone:\n  - [-1, 1, Conv, [16, 3, 2]]\n  - [-1, 1, Conv, [32, 3, 2]]\n  - [-1, 1, Conv, [32, 3, 2]]\nhead:\n"


def one_box_batch(b: int = 2):
    return {"img": torch.zeros(b, 3, 64, 64), "cls": torch.ones(b, 1), "batch_idx": torch.arange(b).float(),
            "bboxes": torch.tensor([[0.5, 0.5, 0.5, 0.5]]).repeat(b, 1)}  # 32 x 32 box in the centre


def test_retina_loss_perfect_boxes_and_focal_value():
    anchors = torch.tensor([[[16.0, 16.0, 48.0, 48.0], [0.0, 0.0, 8.0, 8.0]]])  # [1, 2, 4]
    gt = torch.tensor([[16.0, 16.0, 48.0, 48.0]])
    deltas = torch.zeros(1, 2, 4)
    deltas[0, 0] = encode_boxes(gt, anchors[0, :1])[0]
    logits = torch.zeros(1, 2, 2, requires_grad=True)
    batch = {"img": torch.zeros(1, 3, 64, 64), "cls": torch.ones(1, 1), "batch_idx": torch.zeros(1),
             "bboxes": torch.tensor([[0.5, 0.5, 0.5, 0.5]])}
    loss, items = RetinaLoss(2).evaluate([logits, deltas, anchors], batch, 1)
    assert items[0] == 0  # perfect deltas
    p = 0.5  # sigmoid(0): 1 positive (class 1) and 3 negatives, alpha 0.25, gamma 2, one positive anchor
    expected = 0.25 * p ** 2 * -math.log(p) + 3 * 0.75 * p ** 2 * -math.log(1 - p)
    assert math.isclose(items[1].item(), expected, rel_tol=1e-5)
    loss.backward()
    assert logits.grad[0, 0, 1] < 0 and logits.grad[0, 1, 1] > 0  # push the positive up, the negative down


def test_retina_giou_loss_and_empty_images():
    loss_fn = RetinaLoss(2, box_loss="giou")
    anchors = torch.tensor([[[16.0, 16.0, 48.0, 48.0]]])
    empty = {"img": torch.zeros(1, 3, 64, 64), "cls": torch.zeros(0, 1), "batch_idx": torch.zeros(0),
             "bboxes": torch.zeros(0, 4)}
    deltas = torch.zeros(1, 1, 4, requires_grad=True)
    loss, items = loss_fn.evaluate([torch.zeros(1, 1, 2), deltas, anchors], empty, 1)
    loss.backward()
    assert items[0] == 0 and torch.isfinite(loss) and deltas.grad is not None


def test_fcos_assignment_ranges_centre_and_ties():
    # stride-8 points (finest level: no lower bound) and stride-32 points (coarsest: no upper bound)
    pts = torch.tensor([[32.0, 32.0, 8.0], [20.0, 20.0, 8.0], [36.0, 36.0, 32.0], [100.0, 100.0, 8.0]])
    gt = torch.tensor([[0.0, 0.0, 64.0, 64.0], [24.0, 24.0, 40.0, 40.0]])
    idx = fcos_assign(pts, gt, center_radius=1.5)
    # p0: inside both, ranges ok (max dist 32 and 8 <= 64): smallest box wins; p1: 12 px from the
    # centres (> 1.5 * 8), not positive; p2: stride 32 needs max dist > 128: none; p3 outside
    assert idx.tolist() == [1, -1, -1, -1]
    assert fcos_assign(pts, gt, center_radius=0).tolist()[1] == 0  # whole-box sampling
    torch.testing.assert_close(centerness(torch.tensor([[4.0, 4.0, 4.0, 4.0], [1.0, 2.0, 3.0, 2.0]])),
                               torch.tensor([1.0, math.sqrt(1 / 3)]))


def test_fcos_loss_points_use_x_then_y():
    head_yaml = STEM + "  - [-1, 1, FCOSHead, [nc, 1]]\n"
    model = ModelGraph(head_yaml, source="t").train()
    batch = one_box_batch(1)
    batch["bboxes"] = torch.tensor([[0.25, 0.75, 0.25, 0.25]])  # left-bottom box: x 8..24, y 40..56
    out = model(torch.zeros(1, 3, 64, 64))
    points = out[3][0]
    fg = fcos_assign(points, torch.tensor([[8.0, 40.0, 24.0, 56.0]])) >= 0
    assert fg.any() and (points[fg, 0] < 32).all() and (points[fg, 1] > 32).all()
    loss, items = FCOSLoss(2).evaluate(out, batch, 1)
    loss.backward()
    assert items.shape == (3,) and (items > 0).all()


def test_sample_balanced_fraction():
    matched = torch.tensor([0] * 10 + [-1] * 100 + [-2] * 5)
    pos, neg = sample_balanced(matched, 16, 0.25)
    assert pos.numel() == 4 and neg.numel() == 12
    assert (matched[pos] >= 0).all() and (matched[neg] == -1).all()
    pos, neg = sample_balanced(torch.tensor([-1, -1, 0]), 16, 0.5)
    assert pos.numel() == 1 and neg.numel() == 2


def test_rcnn_loss_runs_roi_stage_with_gradients():
    model = ModelGraph(STEM + "  - [-1, 1, RCNNHead, [nc, [32], [0.5, 1.0, 2.0], None, 32, [50, 20]]]\n",
                       source="t").train()
    out = model(torch.rand(2, 3, 64, 64), one_box_batch())  # the head samples its RoIs from the targets
    loss_fn = build_loss(model.head, {})
    assert loss_fn.names == ("rpn_obj", "rpn_box", "roi_cls", "roi_box")
    loss, items = loss_fn.evaluate(out, one_box_batch(), 2)
    loss.backward()
    assert (items[[0, 2]] > 0).all() and model.head.cls_score.weight.grad.abs().sum() > 0
    assert model.head.rpn.cls_logits.weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        dets = model.head.postprocess(model(torch.zeros(2, 3, 64, 64)), NMSSettings(0.0, 0.5, 7))
    assert len(dets) == 2 and all(d.rows().shape[1] == 6 and len(d) <= 7 for d in dets)


def test_rcnn_head_in_training_needs_the_targets():
    from mirrordet.utils.errors import MirrordetError

    model = ModelGraph(STEM + "  - [-1, 1, RCNNHead, [nc, [32], [0.5, 1.0, 2.0], None, 32, [50, 20]]]\n",
                       source="t").train()
    with pytest.raises(MirrordetError, match=r"call the model as model\(images, targets\)"):
        model(torch.rand(1, 3, 64, 64))
    out = model(torch.rand(2, 3, 64, 64), one_box_batch())
    rpn_samples, roi_samples = out[2], out[5]
    assert len(rpn_samples) == len(roi_samples) == 2
    labels, _, gt_index = roi_samples[0]
    assert len(gt_index) == int((labels > 0).sum())  # the matched ground truth of each positive RoI
    assert (labels > 0).any() and (labels == 0).any()  # the ground truth is a candidate RoI: positives exist
    assert out[3].shape[0] == sum(len(lab) for lab, *_ in roi_samples)
