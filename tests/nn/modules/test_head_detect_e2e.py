"""The end-to-end Detect (YOLOv10 / YOLO26): one-to-one branch, detached features, NMS-free eval."""

import torch

from mirrordet.nn.graph import ModelGraph
from mirrordet.ops.nms import NMSSettings

BODY = """nc: 3
backbone:
  - [-1, 1, Conv, [16, 3, 2]]
  - [-1, 1, Conv, [32, 3, 2]]
  - [-1, 1, Conv, [64, 3, 2]]
head:
  - [[0, 1, 2], 1, {head}, [nc]]
"""


def _model(head: str = "Detect", top: str = "end2end: true\n") -> ModelGraph:
    torch.manual_seed(0)
    return ModelGraph(top + BODY.format(head=head))


def test_branches_are_twins_and_training_returns_both():
    model = _model()
    head = model.head
    twin = [(a.shape, b.shape) for a, b in zip(head.cv2.parameters(), head.one2one_cv2.parameters())]
    assert twin and all(a == b for a, b in twin)
    out = model.train()(torch.rand(2, 3, 64, 64))
    assert len(out) == 2 and [t.shape for t in out[0]] == [t.shape for t in out[1]] == [
        (2, 4 * 16 + 3, 32, 32), (2, 67, 16, 16), (2, 67, 8, 8)]


def test_one_to_one_branch_does_not_train_the_backbone():
    model = _model().train()
    _, one2one = model(torch.rand(2, 3, 64, 64))
    sum(t.sum() for t in one2one).backward()
    assert all(p.grad is None for p in model.layers[0].parameters())
    assert all(p.grad is not None for p in model.head.one2one_cv3.parameters())


def test_eval_decodes_the_one_to_one_branch():
    model = _model().eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        before = model(x)
        model.head.cv3[0][-1].bias.add_(5.0)  # the one-to-many branch: not read in eval
        same = model(x)
        model.head.one2one_cv3[0][-1].bias.add_(5.0)
        changed = model(x)
    assert before.shape == (1, 7, 32 * 32 + 16 * 16 + 8 * 8)
    assert torch.equal(before, same) and not torch.equal(before, changed)


def test_v10detect_is_end_to_end_with_the_depthwise_class_branch():
    head = _model("v10Detect", top="").head
    assert head.end2end and head.cv3[0][0][0].conv.groups == head.cv3[0][0][0].conv.in_channels


def test_postprocess_keeps_overlapping_boxes_without_suppression():
    model = _model().eval()
    pred = torch.zeros(1, 7, 5)
    pred[0, :4] = torch.tensor([[20.0, 30.0, 10.0, 10.0]]).T  # five identical boxes
    pred[0, 4, :] = torch.tensor([0.9, 0.8, 0.7, 0.1, 0.6])
    dets = model.head.postprocess(pred, NMSSettings(conf=0.5, iou=0.1, max_det=3))[0]
    assert dets.scores.tolist() == [0.8999999761581421, 0.800000011920929, 0.699999988079071]
    assert torch.allclose(dets.boxes, torch.tensor([[15.0, 25.0, 25.0, 35.0]]).expand(3, 4))
    plain = _model(top="").eval()  # the same output through NMS keeps one of them
    assert len(plain.head.postprocess(pred, NMSSettings(conf=0.5, iou=0.1, max_det=3))[0]) == 1


def test_fusing_drops_the_one_to_many_branch_and_keeps_the_output():
    from mirrordet.nn.fuse import fuse, is_fused

    model = _model().eval()
    for m in model.modules():  # BN statistics that are not the identity
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2), m.running_var.uniform_(0.5, 1.5), m.weight.data.uniform_(0.5, 1.5)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        before = model(x)
        n = sum(p.numel() for p in model.parameters())
        fuse(model)
        after = model(x)
    assert is_fused(model) and model.head.cv2 is None and model.head.cv3 is None
    assert sum(p.numel() for p in model.parameters()) < n
    torch.testing.assert_close(after, before, atol=1e-3, rtol=1e-4)
