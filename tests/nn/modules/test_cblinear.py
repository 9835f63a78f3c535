"""CBLinear (one conv split into several outputs) and CBFuse (pick, resize, sum), alone and wired
through the graph as in yolov9e."""

import pytest
import torch
import torch.nn.functional as F

from mirrordet.nn.graph import ModelGraph
from mirrordet.nn.modules.cblinear import CBFuse, CBLinear
from mirrordet.nn.parser import load_model_yaml, parse_model
from mirrordet.utils.errors import ModelConfigError


def test_cblinear_splits_one_conv():
    torch.manual_seed(0)
    m = CBLinear(8, [4, 6, 2])
    assert m.conv.out_channels == 12 and m.conv.bias is not None and m.conv.kernel_size == (1, 1)
    x = torch.randn(2, 8, 5, 7)
    outs = m(x)
    assert [tuple(o.shape) for o in outs] == [(2, 4, 5, 7), (2, 6, 5, 7), (2, 2, 5, 7)]
    torch.testing.assert_close(torch.cat(outs, 1), m.conv(x))
    s2 = CBLinear(8, [4], k=3, s=2)
    assert s2(x)[0].shape == (2, 4, 3, 4) and s2.conv.padding == (1, 1)


def test_cblinear_rejects_bad_groups():
    with pytest.raises(ModelConfigError, match="groups"):
        CBLinear(8, [3, 2], g=2)


def test_cbfuse_picks_resizes_and_sums():
    torch.manual_seed(1)
    a = [torch.randn(2, 4, 2, 2), torch.randn(2, 6, 2, 2)]  # a coarser source, stride x2
    b = [torch.randn(2, 6, 4, 4)]  # same size as the target
    t = torch.randn(2, 6, 4, 4)
    out = CBFuse([1, 0])([a, b, t])
    up = a[1].repeat_interleave(2, 2).repeat_interleave(2, 3)  # nearest x2 by hand
    torch.testing.assert_close(out, t + up + b[0])
    assert out.shape == t.shape


def test_cbfuse_non_integer_ratio_uses_nearest_resize():
    src, t = torch.randn(1, 3, 3, 5), torch.randn(1, 3, 7, 9)
    torch.testing.assert_close(CBFuse([0])([[src], t]), t + F.interpolate(src, size=(7, 9), mode="nearest"))


def test_cbfuse_accepts_a_plain_tensor_as_a_list_of_one():
    x, t = torch.randn(1, 3, 4, 4), torch.randn(1, 3, 4, 4)
    torch.testing.assert_close(CBFuse([0])([x, t]), x + t)


STEM = "nc: 3\nbackbone:\n  - [-1, 1, Conv, [16, 3, 2]]\n  - [-1, 1, Conv, [32, 3, 2]]\n"


def _graph(rows: str, scales: str = "", scale: str | None = None) -> ModelGraph:
    return ModelGraph(STEM.replace("backbone:", scales + "backbone:") + rows, scale=scale, source="t.yaml")


def test_two_backbones_linked_through_the_graph():
    rows = ("  - [0, 1, CBLinear, [[8]]]\n"          # 2: from P1 (stride 2)
            "  - [1, 1, CBLinear, [[8, 24]]]\n"      # 3: from P2 (stride 4), a list output
            "  - [-1, 1, Index, [1]]\n"              # 4: a list output can still be indexed
            "head:\n"
            "  - [0, 1, Conv, [8, 1, 1]]\n"          # 5: stride 2 target
            "  - [[2, 3, -1], 1, CBFuse, [[0, 0]]]\n"  # 6: 2[0] + up(3[0]) + 5
            "  - [[3, 6], 1, CBFuse, [[0]]]\n"      # 7
            "  - [-1, 1, Conv, [8, 1, 1]]\n")        # 8
    m = _graph(rows).eval()
    parsed_channels = [r.args for r in m.rows]
    assert parsed_channels[3] == [32, [8, 24]]
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        p1 = m.layers[0](x)
        p2 = m.layers[1](p1)
        l2, l3, t = m.layers[2](p1), m.layers[3](p2), m.layers[5](p1)
        assert l2[0].shape == (1, 8, 16, 16) and l3[0].shape == (1, 8, 8, 8) and l3[1].shape == (1, 24, 8, 8)
        fused = t + l2[0] + F.interpolate(l3[0], scale_factor=2.0, mode="nearest")
        ref = fused + F.interpolate(l3[0], size=(16, 16), mode="nearest")
        torch.testing.assert_close(m(x), m.layers[8](ref))


def test_cblinear_widths_are_scaled():
    rows = ("  - [0, 1, CBLinear, [[32, 128]]]\nhead:\n  - [[-1, 0], 1, CBFuse, [[0]]]\n"
            "  - [-1, 1, Conv, [8, 1, 1]]\n")
    m = _graph(rows, "scales:\n  s: [1.0, 0.25, 1024]\n", scale="s")
    assert m.layers[2].c2s == [8, 32] and m.layers[2].conv.in_channels == 8  # layer 0: 16 * 0.25 -> 8
    assert m.rows[3].args == [[0]] and m(torch.zeros(1, 3, 32, 32)).shape == (1, 8, 16, 16)


@pytest.mark.parametrize("rows, match", [
    ("  - [0, 1, CBLinear, [64]]\nhead:\n  - [-1, 1, Conv, [8]]\n", r"argument 0 \(c2s\) must be list"),
    ("  - [0, 1, CBLinear, [[]]]\nhead:\n  - [-1, 1, Conv, [8]]\n", r"c2s must be a non-empty list"),
    ("  - [0, 1, CBLinear, [[8, 'x']]]\nhead:\n  - [-1, 1, Conv, [8]]\n", r"c2s must be a non-empty list"),
    ("  - [0, 2, CBLinear, [[8]]]\nhead:\n  - [-1, 1, Conv, [8]]\n", r"cannot be repeated"),
    ("  - [0, 1, CBLinear, [[16]]]\nhead:\n  - [-1, 1, CBFuse, [[0]]]\n", r"at least two layers in `from`"),
    ("  - [0, 1, CBLinear, [[16]]]\nhead:\n  - [[2, 0], 1, CBFuse, [[0, 0]]]\n", r"one index per source layer"),
    ("  - [0, 1, CBLinear, [[16]]]\nhead:\n  - [[2, 0], 1, CBFuse, [[1]]]\n", r"idx\[0\] = 1 is out of range"),
    ("  - [0, 1, CBLinear, [[8]]]\nhead:\n  - [[2, 0], 1, CBFuse, [[0]]]\n", r"has 8 channels, but the target has 16"),
    ("  - [0, 1, CBLinear, [[16]]]\nhead:\n  - [[0, 2], 1, CBFuse, [[0]]]\n", r"target\) must be one tensor"),
    ("  - [0, 1, CBLinear, [[16]]]\nhead:\n  - [[2, 0], 1, CBFuse, [0]]\n", r"argument 0 \(idx\) must be list"),
])
def test_bad_rows(rows, match):
    with pytest.raises(ModelConfigError, match=match):
        _graph(rows)


def test_bundled_yolov9e_count():
    d, _, _ = load_model_yaml("yolov9e.yaml")
    with torch.device("meta"):
        parsed, _ = parse_model(d)
    assert sum(p.numel() for p in parsed.layers.parameters()) == 58_206_592
    assert parsed.channels[14] == [64, 128, 256, 512, 1024] and parsed.channels[16] == 64
    names = [r.module_name for r in parsed.rows]
    assert names.count("CBLinear") == 5 and names.count("CBFuse") == 5
