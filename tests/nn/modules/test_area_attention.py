"""AAttn (area attention), ABlock and A2C2f; the YOLO12 files they build."""

import pytest
import torch
import yaml

from mirrordet.nn.graph import ModelGraph
from mirrordet.nn.modules.area_attention import AAttn, ABlock, A2C2f
from mirrordet.nn.modules.c3k2 import C3k
from mirrordet.nn.parser import parse_model
from mirrordet.utils.errors import ModelConfigError
from mirrordet.utils.files import bundled_dir

STEM = "  - [-1, 1, Conv, [16, 3, 2]]\n  - [-1, 1, Conv, [32, 3, 2]]\n  - [-1, 1, Conv, [64, 3, 2]]\n"


@torch.no_grad()
def test_areas_are_independent_horizontal_stripes():
    """Without the positional term (a zero pe), area attention over a map of 4 stripes equals global
    attention run on each stripe alone: no position attends across a stripe border."""
    torch.manual_seed(0)
    m = AAttn(64, num_heads=2, area=4).eval()
    torch.nn.init.zeros_(m.pe.conv.weight)
    whole = AAttn(64, num_heads=2, area=1).eval()
    whole.load_state_dict(m.state_dict())
    x = torch.randn(2, 64, 8, 6)
    stripes = torch.cat([whole(s) for s in x.split(2, dim=2)], dim=2)
    torch.testing.assert_close(m(x), stripes, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(whole(x), stripes, atol=1e-3)  # global attention does mix the stripes


@torch.no_grad()
def test_global_attention_is_permutation_equivariant_without_pe():
    torch.manual_seed(1)
    m = AAttn(32, num_heads=1, area=1).eval()
    torch.nn.init.zeros_(m.pe.conv.weight)
    x = torch.randn(1, 32, 4, 5)
    perm = torch.randperm(20)
    y = m(x).flatten(2)[..., perm]
    y_perm = m(x.flatten(2)[..., perm].view(1, 32, 4, 5)).flatten(2)
    torch.testing.assert_close(y, y_perm, rtol=1e-5, atol=1e-5)


def test_aattn_layout_and_errors():
    m = AAttn(128, num_heads=4, area=2)
    assert m.head_dim == 32 and m.qkv.conv.out_channels == 384
    assert m.pe.conv.kernel_size == (7, 7) and m.pe.conv.groups == 128
    with pytest.raises(ValueError, match="do not split into 2 equal areas"):
        m(torch.randn(1, 128, 3, 3))
    with pytest.raises(ModelConfigError, match="head count dividing"):
        AAttn(100, num_heads=3)
    with pytest.raises(ModelConfigError, match="area >= 1"):
        AAttn(64, num_heads=2, area=0)


def test_ablock_feed_forward_width_and_init():
    torch.manual_seed(0)
    b = ABlock(256, num_heads=8, mlp_ratio=1.2, area=4)
    assert b.mlp[0].conv.out_channels == 307  # int(256 * 1.2)
    w = b.attn.qkv.conv.weight
    assert abs(w.std().item() - 0.02) < 0.002 and w.abs().max().item() < 0.2
    x = torch.randn(1, 256, 4, 4)
    assert b(x).shape == x.shape


def test_a2c2f_wiring_heads_and_shapes():
    m = A2C2f(64, 128, n=2, a2=True, area=4)
    assert m(torch.randn(2, 64, 8, 8)).shape == (2, 128, 8, 8)
    assert m.cv1.conv.out_channels == 64 and m.cv2.conv.in_channels == 3 * 64  # (1 + n) * c_
    assert all(len(s) == 2 and all(isinstance(b, ABlock) for b in s) for s in m.m)
    assert m.m[0][0].attn.num_heads == 2 and m.gamma is None  # one head per 32 channels
    plain = A2C2f(64, 64, n=1, a2=False, area=-1)
    assert isinstance(plain.m[0], C3k) and len(plain.m[0].m) == 2


@torch.no_grad()
def test_a2c2f_scaled_residual():
    m = A2C2f(64, 64, n=1, a2=True, area=1, residual=True).eval()
    torch.testing.assert_close(m.gamma, torch.full((64,), 0.01))
    x = torch.randn(1, 64, 4, 4)
    body = m.cv2(torch.cat([m.cv1(x), m.m[0](m.cv1(x))], 1))
    torch.testing.assert_close(m(x), x + 0.01 * body)
    with pytest.raises(ModelConfigError, match="residual adds its input"):
        A2C2f(32, 64, a2=True, residual=True)
    with pytest.raises(ModelConfigError, match="multiple of 32"):
        A2C2f(64, 80, a2=True)


def _row_block(scale: str, row: str) -> A2C2f:
    text = ("nc: 3\nscales:\n  m: [1.0, 1.0, 512]\n  l: [1.0, 1.0, 512]\nbackbone:\n" + STEM
            + f"head:\n  - [-1, 1, A2C2f, {row}]\n")
    return ModelGraph(text, scale=scale, source="<a2c2f>").layers[-1]


def test_large_scales_default_to_the_scaled_residual_and_narrow_mlp():
    m, l = _row_block("m", "[64, True, 4]"), _row_block("l", "[64, True, 4]")
    assert m.gamma is None and m.m[0][0].mlp[0].conv.out_channels == 64  # mlp_ratio 2 on 32 channels
    assert l.gamma is not None and l.m[0][0].mlp[0].conv.out_channels == 38  # int(32 * 1.2)
    kept = _row_block("l", "[64, True, 4, False, 2.0]")  # a row's own values win
    assert kept.gamma is None and kept.m[0][0].mlp[0].conv.out_channels == 64


@pytest.mark.parametrize("args, match", [("[64, True, 4, True, 2.0, 1.5]", "hidden ratio"),
                                         ("[64, True, 'four']", "argument 2 \\(area\\) must be int"),
                                         ("[64, True, 4, True, 2.0, 0.5, 1, True, 0]", "takes 1..8 arguments")])
def test_bad_rows_are_config_errors(args, match):
    text = f"nc: 3\nbackbone:\n{STEM}head:\n  - [-1, 1, A2C2f, {args}]\n"
    with pytest.raises(ModelConfigError, match=match):
        ModelGraph(text, source="bad.yaml")


# Parameter counts of the reference YOLO12 models (nc 80 detector, nc 1000 classifier).
YOLO12 = {"n": 2_602_288, "s": 9_284_096, "m": 20_199_168, "l": 26_450_784, "x": 59_210_784}
YOLO12_CLS = {"n": 2_999_496, "l": 16_737_160}


@pytest.mark.parametrize("name, counts, scale", [("yolo12.yaml", YOLO12, s) for s in "nsmlx"]
                         + [("yolo12-cls.yaml", YOLO12_CLS, s) for s in "nl"])
def test_yolo12_parameter_counts(name, counts, scale):
    d = yaml.safe_load((bundled_dir("models") / name).read_text())
    parsed, ctx = parse_model(d, scale=scale)
    assert sum(p.numel() for p in parsed.layers.parameters()) == counts[scale]
    a2 = [m for m in parsed.layers if isinstance(m, A2C2f)]
    assert all((m.gamma is not None) == (scale in "lx") for m in a2[:2])  # the two attention rows
    if name == "yolo12.yaml":  # C3k2 rows come first: Detect uses the depthwise class branch
        assert ctx.depthwise_head and parsed.layers[-1].cv3[0][0][0].conv.groups > 1
