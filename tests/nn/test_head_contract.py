"""The head contract (mirrordet.nn.head), for every registered head: declared attributes, strides set
once by the graph, named training outputs, and one eval result type for every detection head."""

from __future__ import annotations

import pytest
import torch

import mirrordet.nn.modules  # noqa: F401  (registers the modules)
from mirrordet.losses.registry import build_registry
from mirrordet.nn.graph import ModelGraph
from mirrordet.nn.head import TASKS, DetectionHead, Head
from mirrordet.ops.detections import Detections
from mirrordet.ops.nms import NMSSettings
from mirrordet.registry import MODULES

STEM = "  - [-1, 1, Conv, [16, 3, 2]]\n  - [-1, 1, Conv, [32, 3, 2]]\n  - [-1, 1, Conv, [64, 3, 2]]\n"
HEADS = [n for n in MODULES.names() if issubclass(MODULES.get(n), Head)]


def _model(name: str) -> ModelGraph:
    src, args = MODULES.get(name).yaml_example
    return ModelGraph(f"nc: 3\nbackbone:\n{STEM}head:\n  - [{src}, 1, {name}, {args!r}]\n", source=f"<{name}>")


def test_heads_are_found_and_only_heads_declare_a_task():
    assert {"Detect", "RetinaHead", "FCOSHead", "RCNNHead", "Classify"} <= set(HEADS)
    others = [n for n in MODULES.names() if n not in HEADS and hasattr(MODULES.get(n), "task")]
    assert not others, f"modules with a task that are not Heads: {others}"


@pytest.mark.parametrize("name", HEADS)
def test_declared_attributes(name):
    cls = MODULES.get(name)
    assert cls.task in TASKS
    assert cls.loss in build_registry().names()
    assert cls.train_outputs and all(isinstance(n, str) and n for n in cls.train_outputs)
    assert sum(n.startswith("*") for n in cls.train_outputs) <= 1 and all(
        not n.startswith("*") for n in cls.train_outputs[:-1])  # only the last name may take the rest
    assert isinstance(cls.traceable, bool)
    assert (cls.task in ("detect", "segment")) == issubclass(cls, DetectionHead)


@pytest.mark.parametrize("name", HEADS)
def test_graph_sets_strides_once_and_training_output_matches_its_names(name, box_targets, leaves):
    model = _model(name)
    head = model.head
    assert model.task == head.task
    if "stride" in head._buffers:
        assert torch.equal(head.stride, model.stride) and model.max_stride >= 32
    x = torch.rand(2, 3, 64, 64)
    out = model.train()(x, box_targets(x))
    outs = out if isinstance(out, list) else [out]
    names = head.train_outputs
    fixed = [n for n in names if not n.startswith("*")]
    if names[-1].startswith("*"):
        assert len(outs) >= len(fixed)
    else:
        assert len(outs) == len(names)
    if not head.needs_targets:  # an entry is a tensor or a list of per-level maps (end-to-end heads)
        assert all(t.shape[0] == 2 for t in leaves(outs))
    else:  # named per-image entries: one per image of the batch
        per_image = [o for n, o in zip(names, outs) if n.endswith("_samples")]
        assert per_image and all(len(o) == 2 for o in per_image)


@pytest.mark.parametrize("name", [n for n in HEADS if issubclass(MODULES.get(n), DetectionHead)])
def test_every_detection_head_returns_detections(name):
    torch.manual_seed(0)
    model = _model(name).eval()
    with torch.no_grad():
        preds = model(torch.rand(2, 3, 64, 64))
    for nms in (NMSSettings(conf=0.0, iou=0.5, max_det=20, multi_label=True),
                NMSSettings(conf=0.0, iou=0.5, max_det=5, classes=(1,), agnostic=True)):
        dets = model.head.postprocess(preds, nms)
        assert len(dets) == 2 and all(isinstance(d, Detections) for d in dets)
        for d in dets:
            n = len(d)
            assert n <= nms.max_det and d.boxes.shape == (n, 4) and d.scores.shape == (n,)
            assert d.labels.dtype == torch.int64 and ((d.labels >= 0) & (d.labels < 3)).all()
            assert (d.scores[:-1] >= d.scores[1:]).all()  # best first
            assert (d.boxes[:, 2:] >= d.boxes[:, :2]).all()  # xyxy
            if nms.classes is not None:
                assert (d.labels == 1).all()
            assert torch.equal(Detections.from_rows(d.rows()).labels, d.labels)
            if model.task == "segment":  # binary masks at the network input, nothing outside the box
                assert d.masks.dtype == torch.bool and d.masks.shape == (n, 64, 64)
                for m, (x1, y1, x2, y2) in zip(d.masks, d.boxes.tolist()):
                    ys, xs = m.nonzero(as_tuple=True)
                    assert ys.numel() == 0 or (xs.min() >= int(x1) and xs.max() < x2 and ys.min() >= int(y1)
                                               and ys.max() < y2)
            else:
                assert d.masks is None
        each = list(model.head.postprocess_each(preds, nms))  # the validator's image-by-image reading
        assert len(each) == len(dets)
        for a, b in zip(each, dets):
            assert torch.equal(a.rows(), b.rows())
            assert (a.masks is None and b.masks is None) or torch.equal(a.masks, b.masks)


def test_detections_to_moves_optional_fields():
    d = Detections(torch.rand(2, 4), torch.rand(2), torch.tensor([0, 1]), masks=torch.ones(2, 3, 3, dtype=torch.bool))
    moved = d.to("cpu")
    assert torch.equal(moved.masks, d.masks) and moved.keypoints is None and torch.equal(moved.rows(), d.rows())


def test_detections_select_keeps_optional_fields():
    d = Detections(torch.rand(3, 4), torch.tensor([0.9, 0.5, 0.1]), torch.tensor([0, 1, 2]),
                   masks=torch.zeros(3, 4, 4), keypoints=torch.zeros(3, 2, 3))
    s = d.select(d.scores > 0.3)
    assert len(s) == 2 and s.masks.shape == (2, 4, 4) and s.keypoints.shape == (2, 2, 3)
