"""Dual assignment of end-to-end heads, and the DFL-free (reg_max 1) YOLO loss."""

import torch

from mirrordet.cfg import load_defaults
from mirrordet.losses.end2end import EndToEndDetectionLoss
from mirrordet.losses.registry import build_loss
from mirrordet.losses.yolo import DetectionLoss
from mirrordet.nn.graph import ModelGraph

BODY = """nc: 2
backbone:
  - [-1, 1, Conv, [16, 3, 2]]
  - [-1, 1, Conv, [32, 3, 2]]
  - [-1, 1, Conv, [64, 3, 2]]
head:
  - [[0, 1, 2], 1, Detect, [nc]]
"""


def _batch(x):
    return {"img": x, "cls": torch.tensor([[0.0], [1.0], [0.0]]), "batch_idx": torch.tensor([0.0, 0.0, 1.0]),
            "bboxes": torch.tensor([[0.3, 0.3, 0.3, 0.3], [0.7, 0.7, 0.4, 0.3], [0.5, 0.5, 0.5, 0.6]])}


def test_the_registry_picks_the_dual_loss_for_end_to_end_heads():
    for top, kind, names in [("", DetectionLoss, ("box_loss", "cls_loss", "dfl_loss")),
                             ("end2end: true\n", EndToEndDetectionLoss,
                              ("box_loss", "cls_loss", "dfl_loss", "o2o_box_loss", "o2o_cls_loss", "o2o_dfl_loss")),
                             ("end2end: true\nreg_max: 1\n", EndToEndDetectionLoss,
                              ("box_loss", "cls_loss", "o2o_box_loss", "o2o_cls_loss"))]:
        loss = build_loss(ModelGraph(top + BODY).head, load_defaults())
        assert type(loss) is kind and loss.names == names


def test_one_to_one_branch_gets_one_positive_per_object():
    torch.manual_seed(0)
    model = ModelGraph("end2end: true\n" + BODY).train()
    x = torch.rand(2, 3, 64, 64)
    loss = build_loss(model.head, load_defaults())
    counts = {}
    for branch in ("one2many", "one2one"):
        assigner = getattr(loss, branch).assigner
        original = assigner.forward

        def spy(*args, _orig=original, _b=branch):
            out = _orig(*args)
            counts[_b] = int(out[3].sum())  # fg_mask
            return out
        assigner.forward = spy
    total, items = loss.evaluate(model(x), _batch(x), 2)
    assert counts["one2one"] == 3 and counts["one2many"] > 3
    assert torch.isfinite(items).all() and total.requires_grad


def test_reg_max_one_regresses_distances_directly():
    torch.manual_seed(0)
    model = ModelGraph("reg_max: 1\n" + BODY).train()
    x = torch.rand(2, 3, 64, 64)
    loss = build_loss(model.head, load_defaults())
    total, items = loss.evaluate(model(x), _batch(x), 2)
    total.backward()
    assert loss.names == ("box_loss", "cls_loss") and items.shape == (2,)
    assert sum(float(b[-1].weight.grad.abs().sum()) for b in model.head.cv2) > 0  # the box loss reaches the box branch


def test_branches_are_balanced_progressively_over_training():
    torch.manual_seed(0)
    model = ModelGraph("end2end: true\n" + BODY).train()
    x = torch.rand(2, 3, 64, 64)
    preds = model(x)
    loss = build_loss(model.head, load_defaults())
    plain_many, plain_one = loss.one2many(preds[0], _batch(x)), loss.one2one(preds[1], _batch(x))
    expected = {0: 0.8, 5: 0.45, 10: 0.1, 12: 0.1}  # 11 epochs: 0.8 at the first, 0.1 at the last (index 10)
    for epoch, o2m in expected.items():
        loss.set_progress(epoch, 11)
        terms = loss(preds, _batch(x))
        for name, value in plain_many.items():
            assert torch.allclose(terms[name], value * o2m)
        for name, value in plain_one.items():
            assert torch.allclose(terms[name], value * (1 - o2m))


def test_a_fixed_balance_and_a_one_epoch_run():
    loss = EndToEndDetectionLoss(2, [8, 16, 32], o2m_start=0.5, o2m_end=0.5)
    for epoch in range(4):
        loss.set_progress(epoch, 4)
        assert loss.o2m == 0.5
    loss = EndToEndDetectionLoss(2, [8, 16, 32])
    loss.set_progress(0, 1)
    assert loss.o2m == 0.8  # a single epoch is the first epoch


def test_weights_out_of_range_are_refused():
    import pytest

    from mirrordet.utils.errors import MirrordetError

    with pytest.raises(MirrordetError, match="within \\[0, 1\\]"):
        EndToEndDetectionLoss(2, [8, 16, 32], o2m_start=1.5)
