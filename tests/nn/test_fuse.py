import copy

import pytest
import torch
from torch import nn

from mirrordet.nn.fuse import fuse, fuse_conv_bn, is_fused
from mirrordet.nn.graph import build_model


def _calibrate(model: nn.Module, imgsz: int = 64) -> nn.Module:
    """Give every BatchNorm real running statistics (one train-mode pass), then eval mode."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = None
            m.reset_running_stats()
    model.train()
    with torch.no_grad():
        model(torch.rand(2, 3, imgsz, imgsz, generator=torch.Generator().manual_seed(0)))
    return model.eval()


@pytest.mark.parametrize("cfg, nc", [("yolov8n-mirror.yaml", 4), ("yolov8n-cls.yaml", 5)])
def test_fuse_keeps_outputs(cfg, nc):
    torch.manual_seed(0)
    model = _calibrate(build_model(cfg, nc=nc))
    x = torch.rand(2, 3, 64, 96)
    exact = copy.deepcopy(model).double()
    with torch.no_grad():
        ref32, ref64 = model(x), exact(x.double())
        fused64 = fuse(copy.deepcopy(exact))(x.double())
        fused32 = fuse(copy.deepcopy(model))(x)
    # the folding is exact algebra: in float64 the fused model gives the same outputs
    torch.testing.assert_close(fused64, ref64, atol=1e-9, rtol=1e-9)
    # in float32 it is as accurate as the unfused model (this calibrated net has large activations,
    # so both differ from float64 by rounding; fusion must not add to that)
    err_fused, err_plain = (fused32.double() - ref64).abs().max(), (ref32.double() - ref64).abs().max()
    assert err_fused <= 2 * err_plain + 1e-6, (err_fused, err_plain)
    fused = fuse(copy.deepcopy(model))
    assert is_fused(fused) and not is_fused(model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.modules())
    n_params = sum(p.numel() for p in fused.parameters())
    assert n_params < sum(p.numel() for p in model.parameters())  # BN scale/shift folded away


def test_fuse_conv_bn_matches_grouped_strided_conv():
    torch.manual_seed(1)
    conv = nn.Conv2d(8, 16, 3, 2, 1, groups=2, bias=False)
    bn = nn.BatchNorm2d(16, eps=1e-3)
    bn.running_mean.normal_()
    bn.running_var.uniform_(0.2, 3)
    bn.weight.data.normal_()
    bn.bias.data.normal_()
    bn.eval()
    x = torch.randn(3, 8, 9, 11)
    with torch.no_grad():
        torch.testing.assert_close(fuse_conv_bn(conv, bn)(x), bn(conv(x)), atol=1e-5, rtol=1e-5)


def test_fuse_is_idempotent_and_eval():
    model = build_model("yolov8n.yaml", nc=2)
    fuse(model)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    fuse(model)
    assert not model.training
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
