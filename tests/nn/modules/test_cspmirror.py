"""CSPMirror equals its documented formula; shapes, widths 1..4, odd widths, batches, gradients."""

import math

import pytest
import torch

from mirrordet.nn.modules import C2f, CSPMirror, CSPMirrorSeed
from mirrordet.nn.modules.cspmirror import view_width


def reference_forward(block: CSPMirror, x: torch.Tensor) -> torch.Tensor:
    """The docstring/DESIGN formula written out independently with explicit column bookkeeping."""
    y = block.cv1(x)
    a, b = y.chunk(2, 1)
    B, C, H, W = b.shape
    outs = [a, b]
    if W < 2:
        v = b
        for m in block.m:
            v = m(v)
            outs.append(v)
        return block.cv2(torch.cat(outs, 1))
    wv = math.ceil(round(W * (1 + block.overlap) / 2, 9))
    left = b[..., :wv]
    right = b[..., W - wv:]
    if block.flip:
        right = torch.flip(right, dims=[3])
    v = torch.cat([left, right], 0)
    for m in block.m:
        v = m(v)
        l, r = v[:B], v[B:]
        if block.flip:
            r = torch.flip(r, dims=[3])
        acc = torch.zeros(B, C, H, W)
        cnt = torch.zeros(W)
        acc[..., :wv] += l
        cnt[:wv] += 1
        acc[..., W - wv:] += r
        cnt[W - wv:] += 1
        outs.append(acc / cnt)
    return block.cv2(torch.cat(outs, 1))


@pytest.mark.parametrize("flip", [True, False])
@pytest.mark.parametrize("overlap", [0.0, 0.2, 0.5])
@pytest.mark.parametrize("w", [1, 2, 3, 4, 7, 10, 13])
def test_forward_equals_formula(w, overlap, flip):
    torch.manual_seed(0)
    block = CSPMirror(8, 16, n=2, shortcut=True, overlap=overlap, flip=flip).eval()
    x = torch.randn(3, 8, 5, w)
    with torch.no_grad():
        out = block(x)
        ref = reference_forward(block, x)
    assert out.shape == (3, 16, 5, w)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_fixed_input_known_views():
    """With identity-like bottleneck outputs the stitch puts every column back where it came from."""
    from mirrordet.nn.modules.cspmirror import split_views, stitch

    b = torch.arange(2 * 1 * 1 * 10, dtype=torch.float).view(2, 1, 1, 10)
    for flip in (True, False):
        v = split_views(b, view_width(10, 0.2), flip)
        assert v.shape == (4, 1, 1, 6)
        if flip:
            assert torch.equal(v[2, 0, 0], b[0, 0, 0, 4:].flip(0))  # the right view starts at the border
        torch.testing.assert_close(stitch(v, 10, flip), b)


def test_view_width_rounding():
    assert view_width(10, 0.2) == 6  # 10 * 1.2 / 2 = 6.000000000000001 in floating point
    assert view_width(7, 0.2) == 5 and view_width(1, 0.2) == 1 and view_width(4, 1.0) == 4


def test_same_parameters_as_c2f():
    for n, shortcut in ((1, False), (3, True)):
        a, b = CSPMirror(32, 64, n, shortcut), C2f(32, 64, n, shortcut)
        assert sum(p.numel() for p in a.parameters()) == sum(p.numel() for p in b.parameters())


def test_gradients_reach_every_parameter_batch_and_odd_width():
    block = CSPMirror(4, 8, n=2, shortcut=True).train()
    x = torch.randn(4, 4, 9, 11, requires_grad=True)
    block(x).square().mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for name, p in block.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_batch_elements_are_independent_in_eval():
    torch.manual_seed(1)
    block = CSPMirror(4, 8, n=1).eval()
    x = torch.randn(3, 4, 6, 9)
    with torch.no_grad():
        full = block(x)
        single = torch.cat([block(x[i:i + 1]) for i in range(3)])
    torch.testing.assert_close(full, single, atol=1e-5, rtol=1e-5)


def test_bad_overlap_rejected():
    from mirrordet.utils.errors import ModelConfigError

    with pytest.raises(ModelConfigError, match="overlap"):
        CSPMirror(4, 8, overlap=1.5)


def test_seed_block_arithmetic():
    torch.manual_seed(0)
    block = CSPMirrorSeed(3, cout=4).eval()
    x = torch.randn(2, 3, 10, 10)
    with torch.no_grad():
        out = block(x)
        hs = (10 + 1) // 2
        c = hs + int(0.2 * hs)  # 5 + 1 = 6
        p1, p2 = x[..., :c, :c], x[..., 10 - c:, 10 - c:]
        q1, q2 = block.base(p1), block.base(p2)
    assert out.shape == (2, 3 + 8, 6, 6)
    torch.testing.assert_close(out, torch.cat([p1 + p2, q1 + q2], 1), atol=1e-5, rtol=1e-5)
