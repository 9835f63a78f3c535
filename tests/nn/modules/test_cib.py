"""CIB, RepVGGDW (and its branch fusion) and C2fCIB; the YOLOv10 backbones and necks they build."""

import pytest
import torch
import yaml

from mirrordet.nn.fuse import fuse
from mirrordet.nn.graph import ModelGraph
from mirrordet.nn.modules.cib import CIB, C2fCIB, RepVGGDW
from mirrordet.nn.parser import parse_model
from mirrordet.utils.errors import ModelConfigError
from mirrordet.utils.files import bundled_dir

STEM = "  - [-1, 1, Conv, [16, 3, 2]]\n  - [-1, 1, Conv, [32, 3, 2]]\n  - [-1, 1, Conv, [64, 3, 2]]\n"


@torch.no_grad()
def _randomize(m: torch.nn.Module) -> torch.nn.Module:
    """Non-trivial BatchNorm statistics and affine terms, so that BN is not the identity."""
    for bn in m.modules():
        if isinstance(bn, torch.nn.BatchNorm2d):
            bn.running_mean.uniform_(-0.3, 0.3)
            bn.running_var.uniform_(0.5, 1.5)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.3, 0.3)
    return m


@torch.no_grad()
def test_repvggdw_fuse_equals_the_two_branches_in_eval():
    torch.manual_seed(0)
    m = _randomize(RepVGGDW(24)).eval()
    x = torch.randn(2, 24, 13, 11)
    ref = m(x)
    n_before = sum(p.numel() for p in m.parameters())
    assert m.reparameterize() is m
    assert m.conv1 is None and m.conv.conv.kernel_size == (7, 7) and m.conv.conv.groups == 24
    assert m.conv.conv.bias is not None and isinstance(m.conv.bn, torch.nn.Identity)
    torch.testing.assert_close(m(x), ref, rtol=1e-5, atol=1e-5)
    assert sum(p.numel() for p in m.parameters()) == 24 * 49 + 24 < n_before  # one 7x7 depthwise + bias
    m.reparameterize()  # fusing twice changes nothing
    torch.testing.assert_close(m(x), ref, rtol=1e-5, atol=1e-5)


@torch.no_grad()
def test_model_wide_fuse_folds_repvggdw_too():
    torch.manual_seed(1)
    m = _randomize(CIB(16, 16, lk=True)).eval()
    x = torch.randn(1, 16, 9, 9)
    ref = m(x)
    fuse(m)  # folds every Conv's BatchNorm, then RepVGGDW's two branches
    assert m.cv1[2].conv1 is None
    torch.testing.assert_close(m(x), ref, rtol=1e-5, atol=1e-5)
    m.cv1[2].reparameterize()  # nothing left to fold
    torch.testing.assert_close(m(x), ref, rtol=1e-5, atol=1e-5)


def test_cib_layout_and_residual():
    m = CIB(32, 32, shortcut=True, e=1.0)
    kinds = [(c.conv.kernel_size[0], c.conv.groups, c.conv.out_channels) for c in m.cv1]
    assert kinds == [(3, 32, 32), (1, 1, 64), (3, 64, 64), (1, 1, 32), (3, 32, 32)]  # dw, pw, dw, pw, dw
    assert m.add and not CIB(32, 64).add and not CIB(32, 32, shortcut=False).add
    assert isinstance(CIB(32, 32, lk=True).cv1[2], RepVGGDW)
    # with the last conv's BN zeroed the branch gives SiLU(0) = 0: the block is the identity
    with torch.no_grad():
        torch.nn.init.zeros_(m.cv1[4].bn.weight)
        torch.nn.init.zeros_(m.cv1[4].bn.bias)
    x = torch.randn(2, 32, 8, 8)
    torch.testing.assert_close(m.eval()(x), x)


def test_c2fcib_shape_wiring_and_large_kernel_cost():
    m = C2fCIB(64, 96, n=2, shortcut=True)
    assert m(torch.randn(2, 64, 10, 12)).shape == (2, 96, 10, 12)
    assert m.c == 48 and m.cv2.conv.in_channels == 4 * 48 and len(m.m) == 2
    assert all(isinstance(b, CIB) and b.add for b in m.m)
    lk = C2fCIB(64, 96, n=2, shortcut=True, lk=True)
    # per block the middle 3x3 depthwise (2c_ channels) gains a parallel 7x7 depthwise + BN
    extra = 2 * (2 * 48 * 49 + 2 * 2 * 48)
    assert sum(p.numel() for p in lk.parameters()) - sum(p.numel() for p in m.parameters()) == extra


def test_c2fcib_state_dict_layout():
    keys = list(C2fCIB(32, 32, 1, True, True).state_dict())
    assert "m.0.cv1.2.conv.conv.weight" in keys and "m.0.cv1.2.conv1.bn.running_var" in keys
    assert keys[0].startswith("cv1.") and not any(k.startswith("m.0.m") for k in keys)


@pytest.mark.parametrize("args, match", [("[64, True, True, 1, 1.5]", "hidden ratio"),
                                         ("[64, True, 'yes']", "argument 2 \\(lk\\) must be bool")])
def test_bad_rows_are_config_errors(args, match):
    text = f"nc: 3\nbackbone:\n{STEM}head:\n  - [-1, 1, C2fCIB, {args}]\n"
    with pytest.raises(ModelConfigError, match=match):
        ModelGraph(text, source="bad.yaml")


# Parameters of every layer but the v10Detect head, as the reference YOLOv10 models have them.
V10_BODY = {"n": 1_845_712, "s": 6_427_552, "m": 14_203_152, "b": 17_628_992, "l": 22_943_296, "x": 27_269_840}


@pytest.mark.parametrize("scale", list(V10_BODY))
def test_yolov10_backbone_and_neck_match_the_reference_counts(scale):
    d = yaml.safe_load((bundled_dir("models") / f"yolov10{scale}.yaml").read_text())
    assert d["head"][-1][2] == "v10Detect"
    d["head"] = d["head"][:-1]  # the body only
    parsed, _ = parse_model(d, scale=scale)
    assert sum(p.numel() for p in parsed.layers.parameters()) == V10_BODY[scale]
    names = [type(m).__name__ for m in parsed.layers]
    assert names[5] == names[7] == names[20] == "SCDown" and names[10] == "PSA" and names[22] == "C2fCIB"
    lk = [m.m[0].cv1[2].__class__.__name__ == "RepVGGDW" for m in parsed.layers if isinstance(m, C2fCIB)]
    assert all(lk) == (scale in "ns")  # the large kernel only in the small models
