"""PSA (YOLOv10's partial self-attention): layout, equivalences with PSABlock and C2PSA, YAML rows."""

import pytest
import torch

from mirrordet.nn.graph import ModelGraph
from mirrordet.nn.modules.psa import C2PSA, PSA, PositionAttention, PSABlock
from mirrordet.utils.errors import ModelConfigError

STEM = "  - [-1, 1, Conv, [16, 3, 2]]\n  - [-1, 1, Conv, [32, 3, 2]]\n  - [-1, 1, Conv, [64, 3, 2]]\n"


@torch.no_grad()
def _randomize(m: torch.nn.Module) -> torch.nn.Module:
    for bn in m.modules():
        if isinstance(bn, torch.nn.BatchNorm2d):
            bn.running_mean.uniform_(-0.2, 0.2)
            bn.running_var.uniform_(0.5, 1.5)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.2, 0.2)
    return m


@pytest.mark.parametrize("c1, heads", [(64, 1), (256, 2), (512, 4)])
def test_shape_kept_and_one_head_per_64_hidden_channels(c1, heads):
    m = PSA(c1, c1)
    assert isinstance(m.attn, PositionAttention) and m.attn.num_heads == heads and m.c == c1 // 2
    assert m(torch.randn(2, c1, 5, 6)).shape == (2, c1, 5, 6)


def test_state_dict_has_attention_and_ffn_at_top_level():
    keys = list(PSA(128, 128).state_dict())
    prefixes = list(dict.fromkeys(k.split(".")[0] for k in keys))
    assert prefixes == ["cv1", "cv2", "attn", "ffn"]
    assert "attn.qkv.conv.weight" in keys and "ffn.1.bn.running_var" in keys


@torch.no_grad()
def test_forward_is_a_psa_block_on_half_the_channels():
    torch.manual_seed(0)
    m = _randomize(PSA(128, 128)).eval()
    block = PSABlock(64, attn_ratio=0.5, num_heads=1).eval()
    block.load_state_dict({k: v for k, v in m.state_dict().items() if k.startswith(("attn.", "ffn."))})
    x = torch.randn(2, 128, 6, 5)
    a, b = m.cv1(x).split(64, dim=1)
    torch.testing.assert_close(m(x), m.cv2(torch.cat((a, block(b)), 1)))


@torch.no_grad()
def test_equals_a_single_block_c2psa_with_renamed_keys():
    torch.manual_seed(1)
    psa = _randomize(PSA(128, 128)).eval()
    c2psa = C2PSA(128, 128, n=1).eval()
    assert sum(p.numel() for p in psa.parameters()) == sum(p.numel() for p in c2psa.parameters())
    renamed = {k if k.startswith("cv") else f"m.0.{k}": v for k, v in psa.state_dict().items()}
    c2psa.load_state_dict(renamed)
    x = torch.randn(1, 128, 7, 4)
    torch.testing.assert_close(psa(x), c2psa(x))


def test_hidden_ratio_and_width_errors():
    m = PSA(256, 256, e=0.25)
    assert m.c == 64 and m.cv2.conv.in_channels == 128
    with pytest.raises(ModelConfigError, match="keeps its width"):
        PSA(64, 128)
    with pytest.raises(ModelConfigError, match="hidden ratio"):
        PSA(64, 64, e=0.0)


def test_yaml_rows():
    text = f"nc: 3\nbackbone:\n{STEM}head:\n  - [-1, 2, PSA, [64]]\n"
    model = ModelGraph(text, source="<psa>")
    layer = model.layers[-1]
    assert isinstance(layer, torch.nn.Sequential) and [type(m) for m in layer] == [PSA, PSA]
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 64, 8, 8)
    bad = f"nc: 3\nbackbone:\n{STEM}head:\n  - [-1, 1, PSA, [128]]\n"
    with pytest.raises(ModelConfigError, match=r"layer 3 \(head row 0\).*keeps its width"):
        ModelGraph(bad, source="bad.yaml")
