"""Tests of mirrordet.engine.ema.ModelEMA."""

from __future__ import annotations

import math

import torch
from torch import nn

from mirrordet.engine.ema import ModelEMA


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 2)
    )


def test_copy_is_eval_without_grads_and_independent():
    model = _model().train()
    ema = ModelEMA(model)
    assert not ema.ema.training
    assert all(not p.requires_grad for p in ema.ema.parameters())
    with torch.no_grad():
        model[0].weight.add_(1.0)
    assert not torch.equal(ema.ema[0].weight, model[0].weight)


def test_decay_ramp():
    ema = ModelEMA(_model(), decay=0.9, tau=10)
    assert ema.current_decay(0) == 0.0
    assert math.isclose(ema.current_decay(10), 0.9 * (1 - math.exp(-1)))
    assert math.isclose(ema.current_decay(10**6), 0.9)


def test_first_update_matches_formula():
    model = _model()
    ema = ModelEMA(model, decay=0.5, tau=1.0)
    before = ema.ema[4].weight.clone()
    with torch.no_grad():
        model[4].weight.fill_(1.0)
    ema.update(model)
    d = 0.5 * (1 - math.exp(-1.0))
    assert ema.updates == 1
    torch.testing.assert_close(ema.ema[4].weight, d * before + (1 - d) * torch.ones_like(before))


def test_converges_toward_fixed_model_weights():
    model = _model()
    ema = ModelEMA(model, decay=0.9, tau=5)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
    start_gap = (ema.ema[4].weight - model[4].weight).abs().max().item()
    for _ in range(200):
        ema.update(model)
    end_gap = (ema.ema[4].weight - model[4].weight).abs().max().item()
    assert start_gap > 0.1
    assert end_gap < 1e-6 * max(1.0, start_gap)


def test_bn_buffers_averaged_and_int_buffers_copied():
    model = _model().train()
    ema = ModelEMA(model, decay=0.5, tau=1e-9)  # d == 0.5 from the first update
    model(torch.randn(8, 3, 6, 6) + 3.0)  # moves running stats, bumps num_batches_tracked
    bn, ebn = model[1], ema.ema[1]
    ema.update(model)
    torch.testing.assert_close(ebn.running_mean, 0.5 * torch.zeros(4) + 0.5 * bn.running_mean)
    torch.testing.assert_close(ebn.running_var, 0.5 * torch.ones(4) + 0.5 * bn.running_var)
    assert ebn.num_batches_tracked.item() == bn.num_batches_tracked.item() == 1
    assert ebn.num_batches_tracked.dtype == torch.long


def test_dataparallel_wrapped_model():
    model = _model()
    wrapped = nn.DataParallel(model)
    ema = ModelEMA(wrapped, decay=0.0)
    assert isinstance(ema.ema, nn.Sequential)
    with torch.no_grad():
        model[4].bias.fill_(3.0)
    ema.update(wrapped)  # decay 0: the EMA equals the model after one update
    torch.testing.assert_close(ema.ema[4].bias, torch.full((2,), 3.0))


def test_state_dict_round_trip():
    model = _model()
    ema = ModelEMA(model, decay=0.9, tau=3)
    with torch.no_grad():
        model[0].weight.mul_(2.0)
    for _ in range(5):
        ema.update(model)
    state = ema.state_dict()
    assert state["updates"] == 5
    other = ModelEMA(_model(), decay=0.9, tau=3)
    other.load_state_dict(state)
    assert other.updates == 5
    for (k, a), b in zip(ema.ema.state_dict().items(), other.ema.state_dict().values()):
        assert torch.equal(a, b), k
