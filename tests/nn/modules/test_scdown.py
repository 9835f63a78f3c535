"""SCDown: pointwise then stride-s depthwise conv; shapes, wiring, parameter count, YAML errors."""

import pytest
import torch
import torch.nn.functional as F

from mirrordet.nn.graph import ModelGraph
from mirrordet.nn.modules.scdown import SCDown
from mirrordet.utils.errors import ModelConfigError

STEM = "  - [-1, 1, Conv, [16, 3, 2]]\n  - [-1, 1, Conv, [32, 3, 2]]\n  - [-1, 1, Conv, [64, 3, 2]]\n"


def _randomize_bn(m: torch.nn.Module) -> None:
    for bn in m.modules():
        if isinstance(bn, torch.nn.BatchNorm2d):
            bn.running_mean.uniform_(-0.2, 0.2)
            bn.running_var.uniform_(0.5, 1.5)
            bn.weight.data.uniform_(0.5, 1.5)
            bn.bias.data.uniform_(-0.2, 0.2)


@pytest.mark.parametrize("hw, out", [((16, 20), (8, 10)), ((15, 17), (8, 9))])
def test_shape_halves_the_map_and_sets_the_width(hw, out):
    y = SCDown(64, 128, 3, 2)(torch.randn(2, 64, *hw))
    assert y.shape == (2, 128, *out)


def test_pointwise_then_depthwise_and_parameter_count():
    m = SCDown(64, 128, 5, 2)
    assert m.cv1.conv.kernel_size == (1, 1) and m.cv1.conv.stride == (1, 1) and m.cv1.conv.groups == 1
    assert m.cv2.conv.kernel_size == (5, 5) and m.cv2.conv.stride == (2, 2) and m.cv2.conv.groups == 128
    assert isinstance(m.cv2.act, torch.nn.Identity) and not isinstance(m.cv1.act, torch.nn.Identity)
    # 1x1 weights + BN, depthwise 5x5 weights + BN: far fewer than one dense 5x5 stride-2 conv
    assert sum(p.numel() for p in m.parameters()) == 64 * 128 + 2 * 128 + 128 * 25 + 2 * 128


@torch.no_grad()
def test_forward_equals_the_two_convs_written_out():
    m = SCDown(8, 16, 3, 2).eval()
    _randomize_bn(m)
    x = torch.randn(2, 8, 9, 11)
    bn1, bn2 = m.cv1.bn, m.cv2.bn
    y = F.silu(F.batch_norm(F.conv2d(x, m.cv1.conv.weight), bn1.running_mean, bn1.running_var, bn1.weight,
                            bn1.bias, eps=bn1.eps))
    y = F.batch_norm(F.conv2d(y, m.cv2.conv.weight, stride=2, padding=1, groups=16), bn2.running_mean,
                     bn2.running_var, bn2.weight, bn2.bias, eps=bn2.eps)
    torch.testing.assert_close(m(x), y)


def test_yaml_row_scales_the_width_and_repeats_stack():
    text = ("nc: 3\nwidth_multiple: 0.25\nbackbone:\n" + STEM
            + "head:\n  - [-1, 2, SCDown, [512, 3, 2]]\n")
    model = ModelGraph(text, source="<scdown>")
    layer = model.layers[-1]
    assert isinstance(layer, torch.nn.Sequential) and len(layer) == 2
    assert layer[0].cv1.conv.in_channels == 16 and layer[0].cv1.conv.out_channels == 128  # 64 and 512, x 0.25
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 128, 2, 2)  # 64 / 8 / 2 / 2


@pytest.mark.parametrize("args, match", [("[128, 4, 2]", "odd kernel"), ("[128, 3, 0]", "stride"),
                                         ("[128, 3, 2, 1]", "takes 1..3 arguments"),
                                         ("[128, 3.0, 2]", "argument 1 \\(k\\) must be int")])
def test_bad_rows_are_config_errors(args, match):
    text = f"nc: 3\nbackbone:\n{STEM}head:\n  - [-1, 1, SCDown, {args}]\n"
    with pytest.raises(ModelConfigError, match=match):
        ModelGraph(text, source="bad.yaml")
