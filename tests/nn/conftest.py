"""Shared helpers of the model-building tests."""

import pytest
import torch


def one_box_targets(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Detection targets of a batch ``x``: one box of class 0 in the middle of every image, with its instance mask
    (the box filled) as the segment task's index maps."""
    b, _, h, w = x.shape
    masks = torch.zeros(b, h, w, dtype=torch.int16)
    masks[:, round(0.25 * h):round(0.75 * h), round(0.3 * w):round(0.7 * w)] = 1
    return {"img": x, "cls": torch.zeros(b, 1), "batch_idx": torch.arange(b).float(),
            "bboxes": torch.tensor([[0.5, 0.5, 0.4, 0.5]]).repeat(b, 1), "masks": masks}


def training_objective(model, out, x: torch.Tensor) -> torch.Tensor:
    """A scalar to backpropagate from a training-mode forward ``out`` of ``model`` on ``x``.

    Usually the sum of the output tensors' means (nested lists included). Heads that sample their own targets (``needs_targets``,
    e.g. the two-stage RoI stage; ``out`` must come from ``model(x, one_box_targets(x))``) get their
    real loss, so that every parameter can receive a gradient.
    """
    head = model.layers[-1]
    if getattr(head, "needs_targets", False):  # also plain modules ending a test model
        from mirrordet.cfg import load_defaults
        from mirrordet.losses.registry import build_loss

        loss, items = build_loss(head, load_defaults()).evaluate(out, one_box_targets(x), x.shape[0])
        assert torch.isfinite(items).all()
        return loss
    return sum(t.float().mean() for t in tensor_leaves(out))


def tensor_leaves(out) -> list[torch.Tensor]:
    """The tensors inside a (nested list/tuple) training output, in order."""
    if isinstance(out, torch.Tensor):
        return [out]
    return [t for x in out for t in tensor_leaves(x)] if isinstance(out, (list, tuple)) else []


def upstream_parameters(model) -> list[tuple[str, torch.nn.Parameter]]:
    """Trainable parameters of the last layer and of every layer it reads, directly or not."""
    keep, todo = set(), [len(model.layers) - 1]
    while todo:
        i = todo.pop()
        if i >= 0 and i not in keep:
            keep.add(i)
            todo.extend(model.sources[i])
    return [(f"layers.{i}.{n}", p) for i in sorted(keep) for n, p in model.layers[i].named_parameters()
            if p.requires_grad]


@pytest.fixture
def objective():
    return training_objective


@pytest.fixture
def box_targets():
    return one_box_targets


@pytest.fixture
def upstream():
    return upstream_parameters


@pytest.fixture
def leaves():
    return tensor_leaves
