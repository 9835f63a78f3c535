"""GELAN blocks: RepConvN (and its branch fusion), RepCSP, ELAN1, RepNCSPELAN4, SPPELAN; the
yolov9t/s/m/c files build with the published parameter counts."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mirrordet.nn.fuse import fuse, is_fused
from mirrordet.nn.graph import ModelGraph
from mirrordet.nn.modules.elan import ELAN1, SPPELAN, RepBottleneck, RepConvN, RepCSP, RepNCSPELAN4
from mirrordet.nn.parser import load_model_yaml, parse_model
from mirrordet.utils.errors import ModelConfigError


def randomize_bn(m: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial BatchNorm statistics and affine parameters, so equivalences are not vacuous."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for bn in m.modules():
            if isinstance(bn, nn.BatchNorm2d):
                c = bn.num_features
                bn.running_mean.copy_(torch.randn(c, generator=g) * 0.2)
                bn.running_var.copy_(torch.rand(c, generator=g) + 0.5)
                bn.weight.copy_(torch.rand(c, generator=g) + 0.5)
                bn.bias.copy_(torch.randn(c, generator=g) * 0.2)
    return m.eval()


def count(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_repconvn_is_the_sum_of_two_branches_then_activation():
    torch.manual_seed(0)
    m = randomize_bn(RepConvN(8, 12))
    x = torch.randn(2, 8, 9, 7)
    with torch.no_grad():
        ref = F.silu(m.conv1.bn(m.conv1.conv(x)) + m.conv2.bn(m.conv2.conv(x)))
        torch.testing.assert_close(m(x), ref)
    assert m.conv1.conv.kernel_size == (3, 3) and m.conv2.conv.kernel_size == (1, 1)
    assert m.conv2.conv.padding == (0, 0) and isinstance(m.conv1.act, nn.Identity)
    assert m(x).shape == (2, 12, 9, 7)
    assert RepConvN(8, 12, s=2)(x).shape == (2, 12, 5, 4)


@pytest.mark.parametrize("s, g, bn_first", [(1, 1, False), (2, 1, False), (1, 4, False), (1, 1, True)])
def test_repconvn_fused_branches_give_the_same_output(s, g, bn_first):
    torch.manual_seed(1)
    m = randomize_bn(RepConvN(8, 12, s=s, g=g))
    x = torch.randn(2, 8, 11, 10)
    with torch.no_grad():
        ref = m(x)
        if bn_first:  # the model-wide BN folding may already have run
            fuse(m)
        m.reparameterize()
        out = m(x)
    assert not hasattr(m, "conv1") and not hasattr(m, "conv2")
    assert isinstance(m.conv, nn.Conv2d) and m.conv.kernel_size == (3, 3) and m.conv.bias is not None
    assert m.conv.groups == g and m.conv.stride == (s, s)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    m.reparameterize()  # idempotent
    torch.testing.assert_close(m(x), ref, atol=1e-5, rtol=1e-5)


def test_whole_block_fusion_keeps_the_output():
    torch.manual_seed(2)
    m = randomize_bn(RepNCSPELAN4(16, 32, 32, 16, 2))
    x = torch.randn(1, 16, 12, 12)
    with torch.no_grad():
        ref = m(x)
        fuse(m)  # folds the BatchNorms, then every RepConvN's two branches
        torch.testing.assert_close(m(x), ref, atol=1e-4, rtol=1e-4)
    assert is_fused(m)
    reps = [r for r in m.modules() if isinstance(r, RepConvN)]
    assert len(reps) == 4 and not any(hasattr(r, "conv1") for r in reps)


def test_repconvn_rejects_geometry_it_cannot_fuse():
    with pytest.raises(ModelConfigError, match="odd kernel"):
        RepConvN(8, 8, k=2)
    with pytest.raises(ModelConfigError, match="odd kernel"):
        RepConvN(8, 8, k=3, p=0)


def test_repcsp_is_a_csp_of_residual_rep_bottlenecks():
    torch.manual_seed(3)
    m = randomize_bn(RepCSP(16, 24, n=2))
    assert len(m.m) == 2 and all(isinstance(b, RepBottleneck) and b.add for b in m.m)
    assert isinstance(m.m[0].cv1, RepConvN) and m.m[0].cv2.conv.kernel_size == (3, 3)
    x = torch.randn(2, 16, 6, 6)
    with torch.no_grad():
        h = m.cv1(x)
        for b in m.m:
            h = h + b.cv2(b.cv1(h))
        ref = m.cv3(torch.cat((h, m.cv2(x)), 1))
        torch.testing.assert_close(m(x), ref)
    assert m(x).shape == (2, 24, 6, 6)


@pytest.mark.parametrize("cls, args", [(RepNCSPELAN4, (16, 40, 32, 12, 1)), (ELAN1, (16, 40, 32, 12))])
def test_elan_wiring(cls, args):
    torch.manual_seed(4)
    m = randomize_bn(cls(*args))
    x = torch.randn(2, 16, 10, 8)
    with torch.no_grad():
        a, b = m.cv1(x).chunk(2, 1)
        s1 = m.cv2(b)
        ref = m.cv4(torch.cat((a, b, s1, m.cv3(s1)), 1))
        torch.testing.assert_close(m(x), ref)
    assert m(x).shape == (2, 40, 10, 8)
    assert m.cv4.conv.in_channels == 32 + 2 * 12


def test_repncspelan4_layout_and_count():
    """Key names and parameter count of the yolov9t P3 block (layer 4): 64 -> 64, c3 64, c4 32, n 3."""
    m = RepNCSPELAN4(64, 64, 64, 32, 3)
    sd = m.state_dict()
    assert sd["cv2.0.m.2.cv1.conv1.conv.weight"].shape == (16, 16, 3, 3)
    assert sd["cv2.0.m.2.cv1.conv2.conv.weight"].shape == (16, 16, 1, 1)
    assert sd["cv3.1.conv.weight"].shape == (32, 32, 3, 3)
    assert sd["cv4.conv.weight"].shape == (64, 128, 1, 1)
    assert len(sd) == 6 * (2 + 2 * (4 + 3 * 3))  # Conv = 6 entries; cv1, cv4, 2 stages of (RepCSP + Conv)
    assert isinstance(m.cv2[0], RepCSP) and len(m.cv2[0].m) == 3
    assert count(m) == 65_216  # as in the published yolov9t


def test_published_block_counts():
    """yolov9t layers 2 (ELAN1) and 9 (SPPELAN)."""
    assert count(ELAN1(32, 32, 32, 16)) == 7_872
    assert count(SPPELAN(128, 128, 64)) == 41_344


def test_sppelan_is_three_chained_pools():
    torch.manual_seed(5)
    m = randomize_bn(SPPELAN(16, 24, 8, k=5))
    x = torch.randn(2, 16, 9, 9)
    with torch.no_grad():
        y = m.cv1(x)
        ys = [y]
        for _ in range(3):
            ys.append(F.max_pool2d(ys[-1], 5, 1, 2))
        torch.testing.assert_close(m(x), m.cv5(torch.cat(ys, 1)))
    assert m(x).shape == (2, 24, 9, 9) and m.cv5.conv.in_channels == 32
    with pytest.raises(ModelConfigError, match="odd pool size"):
        SPPELAN(16, 24, 8, k=4)


def _yaml(row: str, scales: str = "") -> str:
    return f"nc: 3\n{scales}backbone:\n  - [-1, 1, Conv, [16, 3, 2]]\n  - {row}\nhead:\n  - [-1, 1, Conv, [8, 1, 1]]\n"


def test_only_the_output_width_is_scaled():
    y = _yaml("[-1, 1, RepNCSPELAN4, [64, 32, 16, 1]]", "scales:\n  s: [1.0, 0.5, 1024]\n")
    m = ModelGraph(y, scale="s")
    b = m.layers[1]
    assert b.cv4.conv.out_channels == 32 and b.cv1.conv.out_channels == 32 and b.cv3[1].conv.out_channels == 16
    m = ModelGraph(_yaml("[-1, 1, SPPELAN, [64, 24]]", "scales:\n  s: [1.0, 0.5, 1024]\n"), scale="s")
    assert m.layers[1].cv5.conv.out_channels == 32 and m.layers[1].cv1.conv.out_channels == 24


def test_repeats_stack_whole_blocks():
    m = ModelGraph(_yaml("[-1, 2, ELAN1, [24, 16, 8]]"))
    assert isinstance(m.layers[1], nn.Sequential) and len(m.layers[1]) == 2
    assert m.layers[1][1].cv1.conv.in_channels == 24


@pytest.mark.parametrize("row, match", [
    ("[-1, 1, RepNCSPELAN4, [64, 32]]", r"RepNCSPELAN4 takes 3..4 arguments"),
    ("[-1, 1, RepNCSPELAN4, [64, 32, 16, 0]]", r"n must be a positive integer"),
    ("[-1, 1, ELAN1, [64, 1, 16]]", r"c3 must be at least 2"),
    ("[-1, 1, ELAN1, [64, 32, 16.5]]", r"argument 2 \(c4\) must be int"),
    ("[-1, 1, SPPELAN, [64, 32, 6]]", r"odd pool size"),
    ("[[0, 0], 1, SPPELAN, [64, 32]]", r"SPPELAN takes one input"),
])
def test_bad_rows_are_config_errors(row, match):
    with pytest.raises(ModelConfigError, match=match):
        ModelGraph(_yaml(row), source="bad.yaml")


@pytest.mark.parametrize("name, params", [("yolov9t.yaml", 2_128_720), ("yolov9s.yaml", 7_318_368),
                                          ("yolov9m.yaml", 20_216_160), ("yolov9c.yaml", 25_590_912)])
def test_bundled_yolov9_files_have_the_published_counts(name, params):
    d, _, _ = load_model_yaml(name)
    with torch.device("meta"):  # counting only: no memory, no init cost
        parsed, _ = parse_model(d)
    assert sum(p.numel() for p in parsed.layers.parameters()) == params
    names = [r.module_name for r in parsed.rows]
    assert names.count("RepNCSPELAN4") + names.count("ELAN1") == 8  # ELAN1 replaces the first in t and s


def test_yolov9t_forward_strides():
    m = ModelGraph(load_model_yaml("yolov9t.yaml")[1], nc=3).eval()
    assert m.stride.tolist() == [8.0, 16.0, 32.0]
    assert count(m.layers[2]) == count(ELAN1(32, 32, 32, 16))
