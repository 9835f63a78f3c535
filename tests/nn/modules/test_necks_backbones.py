"""TorchVision backbone, Index, FPN, PAN, CSPAttn and list-valued channel bookkeeping in the parser."""

import pytest
import torch

from mirrordet.nn.graph import ModelGraph
from mirrordet.nn.modules.torchvision_backbone import BACKBONES, TorchVision
from mirrordet.utils.errors import ModelConfigError

TV = "nc: 3\nbackbone:\n  - [-1, 1, TorchVision, [{name}, {idx}]]\nhead:\n"


def test_torchvision_channels_and_strides():
    m = ModelGraph(TV.format(name="resnet18", idx=[2, 3, 4]) + "  - [0, 1, FPN, [32, p6p7]]\n", source="t")
    assert m.rows[0].module_name == "TorchVision"
    feats = m.layers[0](torch.zeros(1, 3, 64, 64))
    assert [f.shape[1:] for f in feats] == [(128, 8, 8), (256, 4, 4), (512, 2, 2)]
    outs = m(torch.zeros(1, 3, 64, 64))
    assert [tuple(o.shape[1:]) for o in outs] == [(32, 8, 8), (32, 4, 4), (32, 2, 2), (32, 1, 1), (32, 1, 1)]
    assert len(m.layers[0].stages) == 5  # nothing after the last requested stage is built


@pytest.mark.parametrize("name, idx, chans", [("regnet_x_400mf", [2, 3, 4], [64, 160, 400]),
                                               ("efficientnet_b0", [3, 8], [40, 1280])])
def test_torchvision_other_trunks(name, idx, chans):
    tv = TorchVision(name, idx)
    assert tv.out_channels() == chans


def test_torchvision_rejects_unknown_names_and_bad_files(tmp_path):
    assert "efficientnet_b7" in BACKBONES and "__import__" not in BACKBONES
    with pytest.raises(ModelConfigError, match="not supported"):
        ModelGraph(TV.format(name="os.system", idx=[2]) + "  - [0, 1, Index, [0]]\n", source="t")
    with pytest.raises(ModelConfigError, match="not found"):
        ModelGraph("nc: 3\nbackbone:\n  - [-1, 1, TorchVision, [resnet18, [2], /no/such.pt]]\nhead:\n"
                   "  - [0, 1, Index, [0]]\n", source="t")
    with pytest.raises(ModelConfigError, match="ascending"):
        ModelGraph(TV.format(name="resnet18", idx=[4, 2]) + "  - [0, 1, Index, [0]]\n", source="t")


def test_torchvision_loads_local_weights_and_freezes(tmp_path):
    import torchvision

    ref = torchvision.models.resnet18(weights=None)
    path = tmp_path / "r18.pt"
    torch.save(ref.state_dict(), path)
    tv = TorchVision("resnet18", [2], str(path), freeze=2)
    torch.testing.assert_close(tv.stages[2][0].conv1.weight, ref.layer2[0].conv1.weight)
    assert not any(p.requires_grad for p in tv.stages[1].parameters())
    assert all(p.requires_grad for p in tv.stages[2].parameters())


def test_index_routes_one_level_and_list_channels_flow():
    text = TV.format(name="resnet18", idx=[2, 3, 4]) + (
        "  - [0, 1, Index, [1]]\n"  # 1: C4 (256)
        "  - [-1, 1, Conv, [64, 1, 1]]\n"  # 2: single-input modules read it
        "  - [[0], 1, PAN, [48]]\n"  # 3: PAN on the list output
        "  - [3, 1, Index, [-1]]\n")
    m = ModelGraph(text, source="t")
    assert m.rows[2].args[:2] == [256, 64]
    y = m(torch.zeros(2, 3, 64, 64))
    assert y.shape == (2, 48, 2, 2)
    with pytest.raises(ModelConfigError, match="Index"):  # a single-input module cannot read a list output
        ModelGraph(TV.format(name="resnet18", idx=[2, 3]) + "  - [0, 1, Conv, [8, 1, 1]]\n", source="t")
    with pytest.raises(ModelConfigError, match="out of range"):
        ModelGraph(TV.format(name="resnet18", idx=[2, 3]) + "  - [0, 1, Index, [2]]\n", source="t")


def test_fpn_extras_and_pan_shapes():
    base = "nc: 3\nbackbone:\n  - [-1, 1, Conv, [16, 3, 2]]\n  - [-1, 1, Conv, [32, 3, 2]]\n  - [-1, 1, Conv, [64, 3, 2]]\nhead:\n"
    for extra, n in (("none", 2), ("p6p7", 4), ("p6p7_c5", 4), ("maxpool", 3)):
        m = ModelGraph(base + f"  - [[1, 2], 1, FPN, [24, {extra}]]\n", source="t")
        outs = m(torch.zeros(1, 3, 64, 64))
        assert len(outs) == n and all(o.shape[1] == 24 for o in outs)
        assert [o.shape[-1] for o in outs] == [16, 8, 4, 2][:n]
    with pytest.raises(ModelConfigError, match="extra"):
        ModelGraph(base + "  - [[1, 2], 1, FPN, [24, p9]]\n", source="t")
    pan = ModelGraph(base + "  - [[1, 2], 1, FPN, [24]]\n  - [-1, 1, PAN, [40]]\n", source="t")
    assert [tuple(o.shape[1:]) for o in pan(torch.zeros(1, 3, 64, 64))] == [(40, 16, 16), (40, 8, 8)]


@pytest.mark.parametrize("attn", ["eca", "cbam", "none"])
def test_csp_attn_keeps_shape(attn):
    m = ModelGraph("nc: 3\nbackbone:\n  - [-1, 1, Conv, [16, 3, 2]]\nhead:\n"
                   f"  - [-1, 2, CSPAttn, [32, True, {attn}]]\n", source="t")
    assert m(torch.zeros(2, 3, 32, 32)).shape == (2, 32, 16, 16)
    kinds = {type(x).__name__ for x in m.layers[1].modules()}
    assert ("ECA" in kinds) == (attn == "eca") and ("CBAM" in kinds) == (attn == "cbam")
    with pytest.raises(ModelConfigError, match="attn"):
        ModelGraph("nc: 3\nbackbone:\n  - [-1, 1, Conv, [16, 3, 2]]\nhead:\n  - [-1, 1, CSPAttn, [32, True, se]]\n",
                   source="t")
