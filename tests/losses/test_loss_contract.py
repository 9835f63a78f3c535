"""The loss contract (mirrordet.losses.base), for the loss of every registered head."""

from __future__ import annotations

import pytest
import torch

import mirrordet.nn.modules  # noqa: F401  (registers the modules)
from mirrordet.cfg import load_defaults
from mirrordet.losses.base import Loss, check_loss
from mirrordet.losses.registry import build_loss, build_registry
from mirrordet.nn.graph import ModelGraph
from mirrordet.registry import MODULES
from mirrordet.utils.errors import MirrordetError

STEM = "  - [-1, 1, Conv, [16, 3, 2]]\n  - [-1, 1, Conv, [32, 3, 2]]\n  - [-1, 1, Conv, [64, 3, 2]]\n"
HEADS = [n for n in MODULES.names() if getattr(MODULES.get(n), "loss", None) is not None]


def _model(name: str) -> ModelGraph:
    src, args = MODULES.get(name).yaml_example
    return ModelGraph(f"nc: 3\nbackbone:\n{STEM}head:\n  - [{src}, 1, {name}, {args!r}]\n", source=f"<{name}>")


def _batch(b: int) -> dict[str, torch.Tensor]:
    """Three boxes on two images, with the instance-index maps of the segment task (each box filled)."""
    boxes = torch.tensor([[0.5, 0.5, 0.5, 0.5], [0.3, 0.3, 0.2, 0.3], [0.7, 0.6, 0.3, 0.4]])
    batch_idx = torch.tensor([0.0, 1.0, 1.0])
    masks = torch.zeros(b, 64, 64, dtype=torch.int16)
    for k, ((cx, cy, w, h), i) in enumerate(zip((boxes * 64).tolist(), batch_idx.long().tolist())):
        masks[i, round(cy - h / 2):round(cy + h / 2), round(cx - w / 2):round(cx + w / 2)] = int((batch_idx[:k] == i).sum()) + 1
    return {"img": torch.zeros(b, 3, 64, 64), "cls": torch.tensor([[1.0], [2.0], [0.0]]), "batch_idx": batch_idx,
            "bboxes": boxes, "masks": masks}


def test_every_head_has_a_registered_loss():
    assert {"Detect", "RetinaHead", "FCOSHead", "RCNNHead", "Classify"} <= set(HEADS)
    registered = set(build_registry().names())
    assert all(MODULES.get(n).loss in registered for n in HEADS)


@pytest.mark.parametrize("name", HEADS)
def test_loss_of_every_head_honours_the_contract(name):
    torch.manual_seed(0)
    model = _model(name).train()
    b = 2
    x = torch.rand(b, 3, 64, 64)
    batch = {"cls": torch.tensor([1, 2])} if model.task == "classify" else _batch(b)
    out = model(x, batch)  # heads that sample their own targets read them here
    loss_fn = build_loss(model.head, load_defaults(), world_size=1)
    check_loss(loss_fn)
    terms = loss_fn(out, batch)
    assert tuple(terms) == loss_fn.names  # results.csv columns, in order
    assert all(t.dim() == 0 and torch.isfinite(t) and t.requires_grad for t in terms.values())
    total = loss_fn.total(terms)
    assert torch.equal(total, sum(terms.values()))  # the trainer backpropagates the plain sum
    means = loss_fn.per_image_means(terms, b)
    assert means.shape == (len(loss_fn.names),) and not means.requires_grad
    scale = b if loss_fn.reduction == "sum" else 1
    assert torch.allclose(means * scale, torch.stack([t.detach() for t in terms.values()]))
    total.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.head.parameters())


@pytest.mark.parametrize("name", HEADS)
def test_ddp_world_size_scales_sum_losses_only(name):
    torch.manual_seed(0)
    model = _model(name).train()
    batch = {"cls": torch.tensor([1, 2])} if model.task == "classify" else _batch(2)
    out = model(torch.rand(2, 3, 64, 64), batch)
    one, four = build_loss(model.head, load_defaults(), 1), build_loss(model.head, load_defaults(), 4)
    t1 = one.total(one(out, batch))
    t4 = four.total(four(out, batch))
    assert torch.allclose(t4, t1 * (4 if one.reduction == "sum" else 1))


class _Undeclared(Loss):
    names = ("a", "b")

    def terms(self, preds, batch):
        return {"b": preds.sum(), "a": preds.mean()}  # wrong order


class _BadReduction(Loss):
    names = ("a",)
    reduction = "median"


def test_contract_violations_are_errors():
    with pytest.raises(MirrordetError, match=r"returned terms \['b', 'a'\], but declares \['a', 'b'\]"):
        _Undeclared()(torch.ones(2), {})
    with pytest.raises(MirrordetError, match="reduction must be one of"):
        check_loss(_BadReduction())
    with pytest.raises(MirrordetError, match="is not a mirrordet.losses.base.Loss"):
        check_loss(lambda preds, batch: {})
