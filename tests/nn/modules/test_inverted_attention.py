"""Inverted Attention on the Faster R-CNN RoI head: training only, the top Grad-CAM cells of the hardest RoIs zeroed."""

from __future__ import annotations

import pytest
import torch

from mirrordet.losses.registry import build_loss
from mirrordet.nn.graph import ModelGraph
from mirrordet.utils.errors import ModelConfigError

STEM = "nc: 2\nbackbone:\n  - [-1, 1, Conv, [16, 3, 2]]\n  - [-1, 1, Conv, [32, 3, 2]]\n  - [-1, 1, Conv, [32, 3, 2]]\nhead:\n"


def _model(ia: str = "[0.25, 0.5]", head: str = "RCNNHead", extra: str = "") -> ModelGraph:
    torch.manual_seed(0)
    return ModelGraph(STEM + f"  - [-1, 1, {head}, [nc, [32], [0.5, 1.0, 2.0], None, 32, [50, 20], {ia}{extra}]]\n",
                      source="t")


@pytest.mark.parametrize("head,extra", [("RCNNHead", ""), ("DoubleHeadRCNN", ", standard, 16, 1")])
def test_eval_is_identical_with_and_without(head, extra):
    on, off = _model("[0.25, 0.5]", head, extra).eval(), _model("None", head, extra).eval()
    off.load_state_dict(on.state_dict())
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(on(x), off(x))


def test_the_top_cells_of_the_hardest_positive_rois_are_zeroed():
    head = _model().train().head
    pooled = torch.rand(6, 32, 7, 7)
    labels = torch.tensor([0, 1, 2, 1, 0, 2])  # 4 positives; ia = [0.25 of the cells, 0.5 of the positives]
    out = head.inverted_attention(pooled, labels)
    pos = torch.tensor([1, 2, 3, 5])
    f = pooled[pos].clone().requires_grad_(True)
    logits = head.roi_heads(f)[0]
    grad, = torch.autograd.grad(logits.gather(1, labels[pos, None]).sum(), f)
    prob = logits.detach().softmax(1).gather(1, labels[pos, None]).flatten()
    hard = pos[prob.argsort()[:2]]
    cam = torch.relu((grad.mean((2, 3), keepdim=True) * pooled[pos]).sum(1)).flatten(1)
    for r in range(6):
        if r in hard.tolist():
            zeroed = (out[r] == 0).all(0).flatten()
            k = round(0.25 * 49)
            assert int(zeroed.sum()) == k
            top = cam[pos.tolist().index(r)].topk(k).indices
            assert zeroed[top].all()
        else:
            assert torch.equal(out[r], pooled[r])  # background and easier RoIs untouched


def test_trains_with_inverted_attention():
    model = _model().train()
    batch = {"img": torch.zeros(2, 3, 64, 64), "cls": torch.ones(2, 1), "batch_idx": torch.arange(2).float(),
             "bboxes": torch.tensor([[0.5, 0.5, 0.5, 0.5]]).repeat(2, 1)}
    out = model(torch.rand(2, 3, 64, 64), batch)
    loss, _ = build_loss(model.head, {}).evaluate(out, batch, 2)
    loss.backward()
    assert torch.isfinite(loss) and model.head.cls_score.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("ia", ["[0.5]", "[0, 0.5]", "[0.5, 2]"])
def test_bad_ia_is_a_row_error(ia):
    with pytest.raises(ModelConfigError, match="ia must be"):
        _model(ia)
