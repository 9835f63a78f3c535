"""AConv and ADown: their formulas, output sizes for even and odd inputs, widths and bad rows."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mirrordet.nn.graph import ModelGraph
from mirrordet.nn.modules.downsample import ADown, AConv, blur
from mirrordet.utils.errors import ModelConfigError


def randomize_bn(m: nn.Module) -> nn.Module:
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for bn in m.modules():
            if isinstance(bn, nn.BatchNorm2d):
                bn.running_mean.normal_(0, 0.2, generator=g)
                bn.running_var.uniform_(0.5, 1.5, generator=g)
                bn.weight.uniform_(0.5, 1.5, generator=g)
                bn.bias.normal_(0, 0.2, generator=g)
    return m.eval()


def test_blur_is_a_stride_one_2x2_mean():
    x = torch.arange(12.0).view(1, 1, 3, 4)
    y = blur(x)
    assert y.shape == (1, 1, 2, 3)
    assert y[0, 0, 0, 0] == (0 + 1 + 4 + 5) / 4 and y[0, 0, 1, 2] == (6 + 7 + 10 + 11) / 4


@pytest.mark.parametrize("h, w, oh, ow", [(16, 16, 8, 8), (17, 15, 8, 7), (2, 3, 1, 1), (33, 64, 16, 32)])
def test_output_sizes(h, w, oh, ow):
    x = torch.randn(2, 8, h, w)
    assert AConv(8, 24)(x).shape == (2, 24, oh, ow)
    assert ADown(8, 24)(x).shape == (2, 24, oh, ow)


def test_aconv_formula():
    torch.manual_seed(0)
    m = randomize_bn(AConv(8, 16))
    x = torch.randn(2, 8, 12, 10)
    with torch.no_grad():
        torch.testing.assert_close(m(x), m.cv1(F.avg_pool2d(x, 2, 1)))
    c = m.cv1.conv
    assert (c.kernel_size, c.stride, c.padding) == ((3, 3), (2, 2), (1, 1))
    assert sum(p.numel() for p in m.parameters()) == 16 * 8 * 9 + 2 * 16


def test_adown_formula():
    torch.manual_seed(1)
    m = randomize_bn(ADown(16, 32))
    x = torch.randn(2, 16, 11, 12)
    with torch.no_grad():
        p = F.avg_pool2d(x, 2, 1)
        a, b = p[:, :8], p[:, 8:]
        ref = torch.cat((m.cv1(a), m.cv2(F.max_pool2d(b, 3, 2, 1))), 1)
        torch.testing.assert_close(m(x), ref)
    assert m.cv1.conv.weight.shape == (16, 8, 3, 3) and m.cv1.conv.stride == (2, 2)
    assert m.cv2.conv.weight.shape == (16, 8, 1, 1) and m.cv2.conv.stride == (1, 1)
    assert list(m.state_dict())[:2] == ["cv1.conv.weight", "cv1.bn.weight"]


def test_published_counts():
    """yolov9t layer 3 (AConv 32 -> 64) and yolov9c layer 3 (ADown 256 -> 256)."""
    assert sum(p.numel() for p in AConv(32, 64).parameters()) == 18_560
    assert sum(p.numel() for p in ADown(256, 256).parameters()) == 164_352


def test_adown_needs_even_widths():
    with pytest.raises(ModelConfigError, match="must be even"):
        ADown(15, 32)
    with pytest.raises(ModelConfigError, match="must be even"):
        ADown(16, 31)


def _yaml(row: str, scales: str = "") -> str:
    return f"nc: 3\n{scales}backbone:\n  - [-1, 1, Conv, [16, 3, 2]]\n  - {row}\nhead:\n  - [-1, 1, Conv, [8, 1, 1]]\n"


@pytest.mark.parametrize("name", ["AConv", "ADown"])
def test_yaml_width_scaling_and_stride(name):
    m = ModelGraph(_yaml(f"[-1, 1, {name}, [180]]"))  # 180 -> 184, the next multiple of 8
    assert m.layers[1](torch.zeros(1, 16, 8, 8)).shape == (1, 184, 4, 4)
    assert m.stride.tolist() == [4.0]  # the stem's stride 2, then this block's
    m = ModelGraph(_yaml(f"[-1, 1, {name}, [64]]", "scales:\n  s: [1.0, 0.25, 1024]\n"), scale="s")
    assert m.layers[1](torch.zeros(1, 8, 8, 8)).shape == (1, 16, 4, 4)  # stem 16 * 0.25 -> 8 (multiple of 8)


@pytest.mark.parametrize("row, match", [
    ("[-1, 1, AConv, []]", r"AConv takes 1..1 arguments"),
    ("[-1, 1, ADown, [64, 3]]", r"ADown takes 1..1 arguments"),
    ("[-1, 1, ADown, [true]]", r"argument 0 \(c2\) must be int"),
    ("[[0, 0], 1, AConv, [64]]", r"AConv takes one input"),
])
def test_bad_rows(row, match):
    with pytest.raises(ModelConfigError, match=match):
        ModelGraph(_yaml(row), source="bad.yaml")
