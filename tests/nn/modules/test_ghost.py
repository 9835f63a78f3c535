"""Ghost blocks: GhostConv, GhostBottleneck and C3Ghost."""

import pytest
import torch
from torch import nn

from mirrordet.nn.graph import ModelGraph
from mirrordet.nn.modules.c3k2 import C3
from mirrordet.nn.modules.ghost import C3Ghost, GhostBottleneck, GhostConv
from mirrordet.utils.errors import ModelConfigError


def test_ghost_conv_second_half_is_the_cheap_map_of_the_first():
    torch.manual_seed(0)
    m = GhostConv(16, 32, 3, 2).eval()
    assert m.cv1.conv.stride == (2, 2) and m.cv1.conv.out_channels == 16
    assert m.cv2.conv.groups == 16 and m.cv2.conv.kernel_size == (5, 5)  # depth-wise 5x5
    x = torch.randn(2, 16, 10, 12)
    with torch.no_grad():
        y = m(x)
        assert y.shape == (2, 32, 5, 6)
        torch.testing.assert_close(y[:, :16], m.cv1(x))
        torch.testing.assert_close(y[:, 16:], m.cv2(y[:, :16]))


def test_ghost_conv_parameters_are_about_half_a_conv():
    ghost = sum(p.numel() for p in GhostConv(64, 128, 3).parameters())
    # primary 3x3 to 64 channels + depth-wise 5x5 on 64, each conv with its BatchNorm
    assert ghost == 64 * 64 * 9 + 2 * 64 + 64 * 25 + 2 * 64


def test_ghost_conv_rejects_odd_output():
    with pytest.raises(ModelConfigError, match="must be even"):
        GhostConv(16, 15)


def test_ghost_bottleneck_is_residual_at_stride_one():
    torch.manual_seed(0)
    m = GhostBottleneck(32, 32).eval()
    assert isinstance(m.shortcut, nn.Identity) and isinstance(m.conv[1], nn.Identity)
    last = m.conv[2]
    assert isinstance(last.cv1.act, nn.Identity) and isinstance(last.cv2.act, nn.Identity)
    for bn in (last.cv1.bn, last.cv2.bn):  # the projecting Ghost conv outputs zero -> the block is x
        nn.init.zeros_(bn.weight)
        nn.init.zeros_(bn.bias)
    x = torch.randn(2, 32, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(m(x), x)


def test_ghost_bottleneck_stride_two_downsamples_both_paths():
    m = GhostBottleneck(16, 32, 3, 2)
    assert m.conv[1].conv.stride == (2, 2) and m.conv[1].conv.groups == 16
    assert m.shortcut[0].conv.groups == 16 and m.shortcut[1].conv.out_channels == 32
    assert m(torch.randn(1, 16, 8, 10)).shape == (1, 32, 4, 5)


@pytest.mark.parametrize("args, match", [((16, 32, 3, 1), "needs c1 == c2"), ((16, 16, 3, 3), "stride must be 1 or 2"),
                                         ((18, 18), "multiple of 4")])
def test_ghost_bottleneck_rejects_impossible_wiring(args, match):
    with pytest.raises(ModelConfigError, match=match):
        GhostBottleneck(*args)


def test_c3ghost_is_a_c3_of_ghost_bottlenecks():
    m = C3Ghost(32, 64, n=2)
    assert isinstance(m, C3) and len(m.m) == 2 and all(isinstance(b, GhostBottleneck) for b in m.m)
    keys = {k: tuple(v.shape) for k, v in m.state_dict().items()}
    assert keys["cv1.conv.weight"] == (32, 32, 1, 1) and keys["cv3.conv.weight"] == (64, 64, 1, 1)
    assert keys["m.1.conv.0.cv1.conv.weight"] == (8, 32, 1, 1)  # Ghost conv to 16: primary half of 8
    assert keys["m.1.conv.2.cv2.conv.weight"] == (16, 1, 5, 5)
    assert not any(k.startswith("m.0.conv.1.") for k in keys)  # no depth-wise conv at stride 1
    assert m(torch.randn(2, 32, 8, 8)).shape == (2, 64, 8, 8)


def test_yaml_rows_scale_width_and_depth():
    text = ("nc: 3\nscales:\n  s: [0.33, 0.50, 1024]\nbackbone:\n  - [-1, 1, Conv, [64, 3, 2]]\n"
            "  - [-1, 1, GhostConv, [128, 3, 2]]\n  - [-1, 3, C3Ghost, [128, True]]\n"
            "head:\n  - [-1, 6, GhostBottleneck, [128, 3, 1]]\n")
    m = ModelGraph(text, source="t.yaml")
    assert m.layers[1].cv1.conv.out_channels == 32  # GhostConv to 64 (128 * 0.5)
    assert len(m.layers[2].m) == 1  # 3 * 0.33 rounds to 1
    assert isinstance(m.layers[3], nn.Sequential) and len(m.layers[3]) == 2  # 6 * 0.33 -> 2
    assert m(torch.randn(1, 3, 32, 32)).shape == (1, 64, 8, 8)


def test_yaml_rejects_repeated_stride_two_bottlenecks():
    text = "nc: 3\nbackbone:\n  - [-1, 1, Conv, [16, 3, 2]]\nhead:\n  - [-1, 2, GhostBottleneck, [16, 3, 2]]\n"
    with pytest.raises(ModelConfigError, match=r"layer 1 \(head row 0\).*cannot repeat"):
        ModelGraph(text, source="t.yaml")


@pytest.mark.parametrize("scale, params", [("n", 1_865_316), ("s", 5_960_072)])
def test_bundled_yolov8_ghost_matches_the_published_size(scale, params):
    from mirrordet.nn import build_model

    m = build_model(f"yolov8{scale}-ghost.yaml")
    assert sum(p.numel() for p in m.parameters()) == params
    assert [float(s) for s in m.stride] == [8.0, 16.0, 32.0]
