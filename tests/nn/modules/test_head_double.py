"""DoubleHeadRCNN: the fc-head classifies, the conv-head regresses; otherwise a Faster R-CNN head."""

from __future__ import annotations

import pytest
import torch

from mirrordet.losses.registry import build_loss
from mirrordet.nn.graph import ModelGraph
from mirrordet.utils.errors import ModelConfigError

STEM = "nc: 2\nbackbone:\n  - [-1, 1, Conv, [16, 3, 2]]\n  - [-1, 1, Conv, [32, 3, 2]]\n  - [-1, 1, Conv, [32, 3, 2]]\nhead:\n"
ROW = "  - [-1, 1, DoubleHeadRCNN, [nc, [32], [0.5, 1.0, 2.0], None, 32, [50, 20], None, standard, 16, 1]]\n"


def _batch(b: int = 2):
    return {"img": torch.zeros(b, 3, 64, 64), "cls": torch.ones(b, 1), "batch_idx": torch.arange(b).float(),
            "bboxes": torch.tensor([[0.5, 0.5, 0.5, 0.5]]).repeat(b, 1)}


def test_each_branch_does_its_own_task():
    torch.manual_seed(0)
    head = ModelGraph(STEM + ROW, source="t").eval().head
    feats = [torch.rand(1, 32, 8, 8)]
    rois = [torch.tensor([[4.0, 4.0, 40.0, 40.0], [10.0, 12.0, 60.0, 50.0]])]
    logits, deltas = head.roi_forward(feats, rois)
    assert logits.shape == (2, 3) and deltas.shape == (2, 3, 4)
    with torch.no_grad():
        for p in head.conv_head.parameters():
            p.add_(0.5)
    logits2, deltas2 = head.roi_forward(feats, rois)
    assert torch.equal(logits, logits2) and not torch.allclose(deltas, deltas2)  # conv-head: regression only
    with torch.no_grad():
        for p in head.box_head.parameters():
            p.add_(0.5)
    logits3, deltas3 = head.roi_forward(feats, rois)
    assert not torch.allclose(logits2, logits3) and torch.equal(deltas2, deltas3)  # fc-head: classification only


def test_trains_with_the_rcnn_loss_and_decodes():
    model = ModelGraph(STEM + ROW, source="t").train()
    out = model(torch.rand(2, 3, 64, 64), _batch())
    loss, items = build_loss(model.head, {}).evaluate(out, _batch(), 2)
    loss.backward()
    assert torch.isfinite(loss) and model.head.conv_head[0].body[0].weight.grad.abs().sum() > 0
    assert model.head.box_head[1].weight.grad.abs().sum() > 0
    from mirrordet.ops.nms import NMSSettings

    model.eval()
    with torch.no_grad():
        dets = model.head.postprocess(model(torch.zeros(2, 3, 64, 64)), NMSSettings(0.0, 0.5, 5))
    assert len(dets) == 2 and all(len(d) <= 5 for d in dets)


@pytest.mark.parametrize("args,match", [("16, 1]]", None), ("2, 1]]", "conv_dim must be >= 4"),
                                        ("16, -1]]", "num_blocks must be >= 0")])
def test_conv_head_arguments_are_checked(args, match):
    row = ROW.replace("16, 1]]", args)
    if match is None:
        assert len(ModelGraph(STEM + row, source="t").head.conv_head) == 1 + 1 + 2  # widen, 1 block, pool, flatten
    else:
        with pytest.raises(ModelConfigError, match=match):
            ModelGraph(STEM + row, source="t")
