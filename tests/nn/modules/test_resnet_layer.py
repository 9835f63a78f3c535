"""ResNetLayer: ResNet stem and bottleneck stages as YAML rows."""

import pytest
import torch
from torch import nn

from mirrordet.nn.graph import ModelGraph
from mirrordet.nn.modules.resnet_layer import ResNetBlock, ResNetLayer
from mirrordet.utils.errors import ModelConfigError


def test_stem_reduces_by_four():
    m = ResNetLayer(3, 16, 1, True)
    conv, pool = m.layer
    assert conv.conv.kernel_size == (7, 7) and conv.conv.stride == (2, 2) and isinstance(pool, nn.MaxPool2d)
    assert m(torch.randn(1, 3, 32, 24)).shape == (1, 16, 8, 6)


def test_stage_first_block_projects_and_strides():
    m = ResNetLayer(32, 16, 2, False, 3)
    first, *rest = m.layer
    assert all(isinstance(b, ResNetBlock) for b in m.layer) and len(rest) == 2
    assert first.cv2.conv.stride == (2, 2) and first.shortcut[0].conv.stride == (2, 2)
    assert first.shortcut[0].conv.out_channels == 64 and isinstance(first.shortcut[0].act, nn.Identity)
    assert all(isinstance(b.shortcut, nn.Identity) and b.cv1.conv.in_channels == 64 for b in rest)
    y = m(torch.randn(2, 32, 8, 8))
    assert y.shape == (2, 64, 4, 4) and (y >= 0).all()  # ReLU after the residual sum


def test_block_is_relu_of_residual_sum():
    torch.manual_seed(0)
    b = ResNetBlock(64, 16).eval()  # 64 == 4 * 16: identity shortcut
    assert isinstance(b.shortcut, nn.Identity) and isinstance(b.cv3.act, nn.Identity)
    x = torch.randn(1, 64, 5, 5)
    with torch.no_grad():
        torch.testing.assert_close(b(x), torch.relu(b.cv3(b.cv2(b.cv1(x))) + x))


def test_resnet50_backbone_has_torchvision_resnet50_shapes():
    torchvision = pytest.importorskip("torchvision")
    from mirrordet.nn import build_model

    m = build_model("yolov8-cls-resnet50.yaml")
    assert sum(p.numel() for p in m.parameters()) == 27_413_032
    ours = [tuple(p.shape) for layer in m.layers[:5] for p in layer.parameters()]
    tv = torchvision.models.resnet50(weights=None)
    theirs = [tuple(p.shape) for n, p in tv.named_parameters() if not n.startswith("fc.")]
    assert ours == theirs


def test_yaml_rows_are_not_width_scaled_and_check_c1():
    text = ("nc: 3\nscales:\n  n: [0.33, 0.25, 1024]\nbackbone:\n  - [-1, 1, ResNetLayer, [3, 16, 1, True, 1]]\n"
            "head:\n  - [-1, 1, ResNetLayer, [16, 8, 2, False, 2]]\n")
    m = ModelGraph(text, source="t.yaml")
    assert m.rows[0].args == [3, 16, 1, True, 1, 4] and m.rows[1].args == [16, 8, 2, False, 2, 4]
    assert m(torch.randn(1, 3, 32, 32)).shape == (1, 32, 4, 4)
    with pytest.raises(ModelConfigError, match=r"layer 1 \(head row 0\).*c1 \(arg 0\) is 24 but its input has 16"):
        ModelGraph(text.replace("[16, 8, 2", "[24, 8, 2"), source="t.yaml")
    with pytest.raises(ModelConfigError, match="repeats must be 1"):  # 6 x depth 0.33 -> 2
        ModelGraph(text.replace("[-1, 1, ResNetLayer, [16", "[-1, 6, ResNetLayer, [16"), source="t.yaml")
    with pytest.raises(ModelConfigError, match="is_first"):
        ModelGraph(text.replace("True", "1"), source="t.yaml")
    with pytest.raises(ModelConfigError, match="n <= 100"):
        ModelGraph(text.replace("False, 2]", "False, 0]"), source="t.yaml")
