"""DetectionLoss: shapes, finiteness, gradient flow, optimization, empty batches, dtypes, devices."""

import pytest
import torch

from mirrordet.losses.bbox import dfl_decode, distribution_focal_loss
from mirrordet.losses.yolo import DetectionLoss, pack_targets
from mirrordet.utils.errors import MirrordetError

STRIDES = (8, 16, 32)
NC, REG_MAX, IMG = 3, 16, 64


def make_preds(bsz=2, seed=0, dtype=torch.float32, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    return [
        torch.randn(bsz, 4 * REG_MAX + NC, IMG // s, IMG // s, generator=g).to(device=device, dtype=dtype)
        for s in STRIDES
    ]


def make_batch(bsz=2, device="cpu"):
    return {
        "img": torch.zeros(bsz, 3, IMG, IMG, dtype=torch.uint8, device=device),
        "cls": torch.tensor([[1.0], [0.0], [2.0]], device=device),
        "bboxes": torch.tensor(
            [[0.3, 0.3, 0.3, 0.25], [0.5, 0.5, 0.5, 0.6], [0.7, 0.6, 0.4, 0.5]], device=device
        ),
        "batch_idx": torch.tensor([1.0, 0.0, 0.0], device=device),
    }


def test_loss_finite_positive_and_gradients_reach_every_level():
    preds = [p.requires_grad_() for p in make_preds()]
    loss, items = DetectionLoss(NC, STRIDES).evaluate(preds, make_batch(), 2)
    assert loss.dim() == 0 and torch.isfinite(loss) and loss > 0
    assert items.shape == (3,) and not items.requires_grad and (items > 0).all()
    assert torch.allclose(loss, items.sum() * 2)  # sum of weighted parts * batch size
    loss.backward()
    for p in preds:
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0


def test_optimizing_raw_predictions_reduces_loss():
    torch.manual_seed(0)
    preds = [p.requires_grad_() for p in make_preds(seed=1)]
    criterion = DetectionLoss(NC, STRIDES)
    batch = make_batch()
    opt = torch.optim.Adam(preds, lr=0.1)
    first_items = None
    for step in range(40):
        opt.zero_grad()
        loss, items = criterion.evaluate(preds, batch, 2)
        if step == 0:
            first, first_items = float(loss.detach()), items
        loss.backward()
        opt.step()
    last, last_items = criterion.evaluate(preds, batch, 2)
    assert float(last.detach()) < 0.3 * first
    assert (last_items < first_items).all()  # each part improved (box, cls, dfl)


def test_gains_are_applied_explicitly():
    preds = make_preds()
    batch = make_batch()
    _, base = DetectionLoss(NC, STRIDES, box=1.0, cls=1.0, dfl=1.0).evaluate(preds, batch, 2)
    _, scaled = DetectionLoss(NC, STRIDES, box=7.5, cls=0.5, dfl=1.5).evaluate(preds, batch, 2)
    assert torch.allclose(scaled, base * torch.tensor([7.5, 0.5, 1.5]), rtol=1e-5)


def test_batch_without_boxes_gives_cls_loss_only_and_backprops():
    preds = [p.requires_grad_() for p in make_preds()]
    batch = make_batch()
    batch.update(cls=torch.zeros(0, 1), bboxes=torch.zeros(0, 4), batch_idx=torch.zeros(0))
    loss, items = DetectionLoss(NC, STRIDES).evaluate(preds, batch, 2)
    assert torch.isfinite(loss) and loss > 0
    assert items[0] == 0 and items[2] == 0 and items[1] > 0
    loss.backward()
    assert all(p.grad is not None for p in preds)


def test_half_inputs_and_autocast_match_float32():
    preds = make_preds()
    batch = make_batch()
    criterion = DetectionLoss(NC, STRIDES)
    ref, _ = criterion.evaluate([p.half().float() for p in preds], batch, 2)
    half, _ = criterion.evaluate([p.half() for p in preds], batch, 2)
    assert half.dtype == torch.float32 and torch.allclose(half, ref, rtol=1e-5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        auto, _ = criterion.evaluate(preds, batch, 2)
    assert auto.dtype == torch.float32 and torch.allclose(auto, criterion.evaluate(preds, batch, 2)[0], rtol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_with_fp16_autocast_matches_cpu():
    preds = make_preds()
    batch = make_batch()
    cpu_loss, cpu_items = DetectionLoss(NC, STRIDES).evaluate(preds, batch, 2)
    cuda_preds = [p.cuda().requires_grad_() for p in preds]
    with torch.autocast("cuda", dtype=torch.float16):
        loss, items = DetectionLoss(NC, STRIDES).evaluate([p.half() for p in cuda_preds], make_batch(device="cuda"), 2)
    loss.backward()
    assert loss.device.type == "cuda" and torch.isfinite(loss)
    assert torch.allclose(items.cpu(), cpu_items, rtol=2e-2, atol=1e-3)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in cuda_preds)


def test_pack_targets_pads_per_image_in_pixels():
    cls = torch.tensor([[1.0], [0.0], [2.0]])
    boxes = torch.tensor([[0.5, 0.5, 0.5, 0.5], [0.25, 0.25, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0]])
    labels, gt, mask = pack_targets(cls, boxes, torch.tensor([2.0, 0.0, 2.0]), 3, (100, 200))
    assert labels.shape == (3, 2, 1) and gt.shape == (3, 2, 4) and mask.shape == (3, 2, 1)
    assert mask.view(3, 2).tolist() == [[True, False], [False, False], [True, True]]
    assert labels[2, :, 0].tolist() == [1.0, 2.0] and labels[0, 0, 0] == 0
    assert torch.allclose(gt[2, 0], torch.tensor([50.0, 25.0, 150.0, 75.0]))
    assert torch.allclose(gt[0, 0], torch.tensor([0.0, 0.0, 100.0, 50.0]))
    _, empty_gt, empty_mask = pack_targets(torch.zeros(0, 1), torch.zeros(0, 4), torch.zeros(0), 2, (8, 8))
    assert empty_gt.shape == (2, 0, 4) and empty_mask.shape == (2, 0, 1)


def test_dfl_is_minimal_at_the_target_distribution():
    target = torch.tensor([[2.3, 0.0, 5.99, 14.5]])
    logits = torch.full((1, 4, REG_MAX), -30.0)
    for side, t in enumerate(target[0].tolist()):
        lo = int(t)
        hi = min(lo + 1, REG_MAX - 1)
        logits[0, side, lo] = torch.log(torch.tensor(hi - t + 1e-12))
        logits[0, side, hi] = torch.log(torch.tensor(t - lo + 1e-12))
    decoded = dfl_decode(logits.view(1, 1, 4 * REG_MAX), REG_MAX)
    assert torch.allclose(decoded.view(4), target.view(4), atol=1e-3)
    best = distribution_focal_loss(logits, target)
    worse = distribution_focal_loss(logits.roll(1, -1), target)
    assert best.shape == (1, 1) and float(best) < float(worse)


def test_bad_shapes_raise_project_errors():
    with pytest.raises(MirrordetError, match="expected"):
        DetectionLoss(NC + 1, STRIDES)(make_preds(), make_batch())
    with pytest.raises(MirrordetError, match="levels"):
        DetectionLoss(NC, STRIDES[:2])(make_preds(), make_batch())
