"""SPP: parallel max-pools of several sizes."""

import pytest
import torch
from torch import nn

from mirrordet.nn.graph import ModelGraph
from mirrordet.nn.modules.blocks import SPPF
from mirrordet.nn.modules.spp import SPP
from mirrordet.utils.errors import ModelConfigError


def test_spp_5_9_13_equals_sppf_5_with_the_same_weights():
    torch.manual_seed(0)
    fast = SPPF(32, 24, 5).eval()
    spp = SPP(32, 24, [5, 9, 13]).eval()
    assert spp.state_dict().keys() == fast.state_dict().keys()  # the pools carry no state
    spp.load_state_dict(fast.state_dict())
    x = torch.randn(2, 32, 11, 9)
    with torch.no_grad():
        torch.testing.assert_close(spp(x), fast(x))


def test_spp_layout_and_shape():
    m = SPP(64, 48, (3, 7))
    assert m.cv1.conv.out_channels == 32 and m.cv2.conv.in_channels == 32 * 3
    assert [(p.kernel_size, p.stride, p.padding) for p in m.m] == [(3, 1, 1), (7, 1, 3)]
    assert all(isinstance(p, nn.MaxPool2d) for p in m.m)
    assert m(torch.randn(1, 64, 6, 5)).shape == (1, 48, 6, 5)


@pytest.mark.parametrize("k", [[4], [], [5, 0], [5, True]])
def test_spp_rejects_bad_kernels(k):
    with pytest.raises(ModelConfigError, match="odd kernel sizes"):
        SPP(16, 16, k)


def test_spp_yaml_row():
    text = "nc: 3\nbackbone:\n  - [-1, 1, Conv, [64, 3, 2]]\nhead:\n  - [-1, 1, SPP, [32, [5, 9, 13]]]\n"
    m = ModelGraph(text, source="t.yaml")
    assert m.rows[1].args == [64, 32, [5, 9, 13]] and len(m.layers[1].m) == 3
    assert m(torch.randn(1, 3, 16, 16)).shape == (1, 32, 8, 8)
    with pytest.raises(ModelConfigError, match=r"layer 1 \(head row 0\).*SPP argument 1 \(k\) must be list"):
        ModelGraph(text.replace("[5, 9, 13]", "5"), source="t.yaml")
