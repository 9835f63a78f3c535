"""The YOLO26 forms of SPPF (n pools, shortcut) and C3k2 (attention inner blocks)."""

import pytest
import torch
from torch import nn

from mirrordet.nn.modules.blocks import SPPF
from mirrordet.nn.modules.c3k2 import C3k2
from mirrordet.nn.modules.psa import PSABlock
from mirrordet.utils.errors import ModelConfigError


def test_sppf_concatenates_n_plus_one_maps():
    assert SPPF(32, 16, 5, n=2).cv2.conv.in_channels == 16 * 3
    assert SPPF(32, 16).cv2.conv.in_channels == 16 * 4  # default: three pools


def test_sppf_shortcut_adds_the_input_and_drops_cv1_activation():
    torch.manual_seed(0)
    m = SPPF(16, 16, 5, 3, shortcut=True).eval()
    assert isinstance(m.cv1.act, nn.Identity) and isinstance(m.cv2.act, nn.SiLU)
    x = torch.randn(1, 16, 8, 8)
    plain = SPPF(16, 16, 5, 3, shortcut=False).eval()
    plain.load_state_dict(m.state_dict())
    plain.cv1.act = nn.Identity()
    with torch.no_grad():
        torch.testing.assert_close(m(x), x + plain(x))
    assert not SPPF(16, 32, shortcut=True).add  # no residual across a width change


def test_sppf_rejects_even_kernels():
    with pytest.raises(ModelConfigError, match="odd kernel"):
        SPPF(16, 16, 4)


def test_c3k2_attention_inner_blocks():
    m = C3k2(64, 64, n=2, c3k=True, e=0.5, attn=True)
    assert all(isinstance(b, nn.Sequential) and isinstance(b[1], PSABlock) for b in m.m)
    assert m.m[0][1].attn.num_heads == 1  # one head per 64 hidden channels (32 here -> 1)
    assert m(torch.randn(2, 64, 8, 8)).shape == (2, 64, 8, 8)
