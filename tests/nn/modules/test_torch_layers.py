"""The nn.* torch layers a model YAML may name: nn.MaxPool2d, nn.ZeroPad2d, nn.ConvTranspose2d, nn.Identity."""

import pytest
import torch
from torch import nn

import mirrordet.nn.modules.torch_layers as tl
from mirrordet.nn.graph import ModelGraph
from mirrordet.registry import MODULES
from mirrordet.utils.errors import ModelConfigError

TORCH_CLASSES = {"MaxPool2d": nn.MaxPool2d, "ZeroPad2d": nn.ZeroPad2d, "ConvTranspose2d": nn.ConvTranspose2d,
                 "Identity": nn.Identity}


def graph(rows: str, scales: str = "") -> ModelGraph:
    """A model of one 32-channel stem conv (stride 1) followed by ``rows``."""
    return ModelGraph(f"nc: 3\n{scales}backbone:\n  - [-1, 1, Conv, [32, 3, 1]]\nhead:\n{rows}", source="t.yaml")


@pytest.mark.parametrize("name", sorted(TORCH_CLASSES))
def test_registered_under_torch_and_bare_names_as_torch_subclasses(name):
    cls = MODULES.get(f"nn.{name}")
    assert MODULES.get(name) is cls and cls is getattr(tl, name)
    assert issubclass(cls, TORCH_CLASSES[name])


def test_tiny_yolo_pooling_rows_keep_channels_and_set_the_size():
    m = graph("  - [-1, 1, nn.MaxPool2d, [2, 2, 0]]\n  - [-1, 1, nn.ZeroPad2d, [[0, 1, 0, 1]]]\n"
              "  - [-1, 1, nn.MaxPool2d, [2, 1, 0]]\n  - [-1, 1, nn.Identity, []]\n")
    assert isinstance(m.layers[1], nn.MaxPool2d) and m.layers[1].kernel_size == 2 and m.layers[1].stride == 2
    assert m.layers[2].padding == (0, 1, 0, 1)
    assert [r.params for r in m.rows[1:]] == [0, 0, 0, 0]
    outs = []
    for layer in m.layers[1:]:
        layer.register_forward_hook(lambda _m, _i, o: outs.append(o.shape))
    m(torch.randn(1, 3, 16, 20))
    # halve, pad right/bottom by one, 2x2 pool of stride 1 (size back to the halved one), identity
    assert outs == [(1, 32, 8, 10), (1, 32, 9, 11), (1, 32, 8, 10), (1, 32, 8, 10)]


def test_zeropad_int_form_pads_every_side_with_zeros():
    m = graph("  - [-1, 1, nn.ZeroPad2d, [2]]\n").layers[1]
    x = torch.ones(1, 32, 4, 5)
    y = m(x)
    assert y.shape == (1, 32, 8, 9) and y.sum() == x.sum() and y[..., :2, :].abs().sum() == 0


@pytest.mark.parametrize("pad", ["[0, 1, 0]", "[0, 1, 0, -1]", "[0, 1, 0, True]", "[[0, 1], [0, 1]]", "-1", "'x'"])
def test_zeropad_rejects_bad_padding(pad):
    with pytest.raises(ModelConfigError, match=r"layer 1 \(head row 0\).*nn.ZeroPad2d.*padding"):
        graph(f"  - [-1, 1, nn.ZeroPad2d, [{pad}]]\n")


@pytest.mark.parametrize("args, match", [("[2, 2, 2]", "padding must be in"), ("[0]", "kernel_size must be >= 1"),
                                         ("[3, 0]", "stride must be >= 1"), ("[2.5]", "kernel_size"),
                                         ("[]", "takes 1..4 arguments")])
def test_maxpool_rejects_bad_arguments(args, match):
    with pytest.raises(ModelConfigError, match=match):
        graph(f"  - [-1, 1, nn.MaxPool2d, {args}]\n")


def test_maxpool_default_stride_is_the_kernel():
    m = graph("  - [-1, 1, nn.MaxPool2d, [4]]\n")
    assert m(torch.randn(1, 3, 16, 16)).shape == (1, 32, 4, 4)


def test_conv_transpose_scales_c2_and_upsamples():
    scales = "scales:\n  n: [0.33, 0.25, 1024]\n"
    m = graph("  - [-1, 1, nn.ConvTranspose2d, [256, 2, 2, 0]]\n", scales)
    up = m.layers[1]
    assert (up.in_channels, up.out_channels) == (8, 64)  # 32 * 0.25 in, 256 * 0.25 out
    assert {k: tuple(v.shape) for k, v in up.state_dict().items()} == {"weight": (8, 64, 2, 2), "bias": (64,)}
    assert m.rows[1].args == [8, 64, 2, 2, 0]
    assert m(torch.randn(2, 3, 6, 7)).shape == (2, 64, 12, 14)


def test_conv_transpose_repeats_chain_c2_to_c2():
    up = graph("  - [-1, 2, nn.ConvTranspose2d, [16, 2, 2]]\n").layers[1]
    assert isinstance(up, nn.Sequential) and [(c.in_channels, c.out_channels) for c in up] == [(32, 16), (16, 16)]


def test_conv_transpose_rejects_bad_arguments():
    with pytest.raises(ModelConfigError, match="padding must be >= 0"):
        graph("  - [-1, 1, nn.ConvTranspose2d, [16, 2, 2, -1]]\n")
    with pytest.raises(ModelConfigError, match="c2"):
        graph("  - [-1, 1, nn.ConvTranspose2d, ['x']]\n")


def test_identity_passes_the_tensor_through_and_takes_no_arguments():
    m = graph("  - [-1, 1, nn.Identity, []]\n")
    x = torch.randn(1, 3, 8, 8)
    torch.testing.assert_close(m(x), m.layers[0](x))
    with pytest.raises(ModelConfigError, match="nn.Identity takes 0..0 arguments"):
        graph("  - [-1, 1, nn.Identity, [1]]\n")


def test_bundled_yolov3_tiny_matches_the_published_size():
    from mirrordet.nn import build_model

    m = build_model("yolov3-tiny.yaml")
    assert sum(p.numel() for p in m.parameters()) == 12_173_248
    assert [float(s) for s in m.stride] == [16.0, 32.0]
