"""C2: the two-convolution CSP block."""

import pytest
import torch

from mirrordet.nn.graph import ModelGraph
from mirrordet.nn.modules.blocks import Bottleneck
from mirrordet.nn.modules.c2 import C2
from mirrordet.utils.errors import ModelConfigError


def test_c2_bottlenecks_see_only_the_first_half():
    torch.manual_seed(0)
    m = C2(16, 32, n=2, shortcut=True).eval()
    x = torch.randn(2, 16, 8, 8)
    with torch.no_grad():
        y = m.cv1(x)
        a, b = y[:, :16], y[:, 16:]
        torch.testing.assert_close(m(x), m.cv2(torch.cat((m.m[1](m.m[0](a)), b), 1)))


def test_c2_layout():
    m = C2(48, 32, n=3, shortcut=False, g=2)
    shapes = {k: tuple(v.shape) for k, v in m.state_dict().items() if k.endswith("conv.weight")}
    assert shapes["cv1.conv.weight"] == (32, 48, 1, 1) and shapes["cv2.conv.weight"] == (32, 32, 1, 1)
    assert shapes["m.2.cv1.conv.weight"] == (16, 16, 3, 3) and shapes["m.2.cv2.conv.weight"] == (16, 8, 3, 3)
    assert all(isinstance(b, Bottleneck) and not b.add for b in m.m)
    assert C2(32, 32, shortcut=True).m[0].add


def test_c2_rejects_bad_ratio():
    with pytest.raises(ModelConfigError, match=r"e must be in \(0, 1\]"):
        C2(16, 16, e=1.5)


def test_c2_yaml_row_scales_width_and_depth():
    text = ("nc: 3\nscales:\n  n: [0.33, 0.25, 1024]\nbackbone:\n  - [-1, 1, Conv, [64, 3, 2]]\n"
            "head:\n  - [-1, 3, C2, [256, False]]\n")
    m = ModelGraph(text, source="t.yaml")
    c2 = m.layers[1]
    assert c2.cv2.conv.out_channels == 64 and len(c2.m) == 1 and m.rows[1].args == [16, 64, 1, False]
    assert m(torch.randn(1, 3, 16, 16)).shape == (1, 64, 8, 8)
    with pytest.raises(ModelConfigError, match="shortcut"):
        ModelGraph(text.replace("False", "'no'"), source="t.yaml")


def test_bundled_yolov8_p6_matches_the_published_size():
    from mirrordet.nn import build_model

    m = build_model("yolov8n-p6.yaml")
    assert sum(p.numel() for p in m.parameters()) == 4_984_352
    assert [float(s) for s in m.stride] == [8.0, 16.0, 32.0, 64.0]
    assert sum(type(layer).__name__ == "C2" for layer in m.layers) == 6
