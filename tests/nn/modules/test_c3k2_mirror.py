"""C3k2Mirror: C3k2's parameters and shapes, its inner blocks run on the mirrored views."""

import pytest
import torch

from mirrordet.nn import build_model
from mirrordet.nn.modules.c3k2 import C3k2
from mirrordet.nn.modules.c3k2_mirror import C3k2Mirror
from mirrordet.utils.errors import ModelConfigError


@pytest.mark.parametrize("c3k", [False, True])
def test_full_overlap_without_flip_is_exactly_c3k2(c3k):
    torch.manual_seed(0)
    plain = C3k2(32, 48, n=2, c3k=c3k, e=0.5).eval()
    mirror = C3k2Mirror(32, 48, n=2, c3k=c3k, e=0.5, overlap=1.0, flip=False).eval()
    mirror.load_state_dict(plain.state_dict())  # same layout, same parameters
    x = torch.randn(2, 32, 6, 9)
    with torch.no_grad():
        torch.testing.assert_close(mirror(x), plain(x))


@pytest.mark.parametrize("w", [1, 2, 3, 8, 13])
def test_views_change_the_output_but_not_the_shape(w):
    torch.manual_seed(0)
    plain = C3k2(16, 16, n=1, e=0.5).eval()
    mirror = C3k2Mirror(16, 16, n=1, e=0.5, overlap=0.2, flip=True).eval()
    mirror.load_state_dict(plain.state_dict())
    x = torch.randn(1, 16, 5, w)
    with torch.no_grad():
        y, ref = mirror(x), plain(x)
    assert y.shape == ref.shape == (1, 16, 5, w)
    assert torch.equal(y, ref) == (w == 1)  # one column cannot be split: C3k2's own path


def test_yolo11_mirror_has_yolo11s_parameters_at_every_scale():
    for s in "nm":
        mirror, plain = build_model(f"yolo11{s}-mirror.yaml"), build_model(f"yolo11{s}.yaml")
        assert sum(p.numel() for p in mirror.parameters()) == sum(p.numel() for p in plain.parameters())
        assert [k for k in mirror.state_dict()] == [k for k in plain.state_dict()]
    assert mirror.head.cv3[0][0][0].conv.groups > 1  # the YOLO11 Detect, as in yolo11.yaml


def test_bad_overlap():
    with pytest.raises(ModelConfigError, match="overlap must be within"):
        C3k2Mirror(16, 16, overlap=1.5)
