"""The shared model-input conventions: stride multiples and [0, 1] floats."""

import pytest
import torch

from mirrordet.data.preprocess import stride_multiple, to_unit_float


@pytest.mark.parametrize("size,stride,want", [(640, 32, 640), (641, 32, 672), (1, 32, 32), (0, 32, 32), (480.5, 32, 512)])
def test_stride_multiple(size, stride, want):
    assert stride_multiple(size, stride) == want


def test_to_unit_float_divides_by_255():
    x = torch.arange(256, dtype=torch.uint8)
    assert torch.equal(to_unit_float(x), x.float() / 255)
    half = to_unit_float(x, half=True)
    assert half.dtype == torch.float16 and float(half[-1]) == 1.0


def test_random_batch_scale_sizes():
    import numpy as np
    import torch

    from mirrordet.data.preprocess import random_batch_scale

    x = torch.rand(2, 3, 64, 64)
    sizes = {random_batch_scale(x, 64, 32, np.random.default_rng(k)).shape[-1] for k in range(60)}
    assert sizes <= {32, 64, 96} and len(sizes) >= 2  # [0.5, 1.5] x 64, multiples of the stride
    out = random_batch_scale(x, 64, 32, np.random.default_rng(3))
    assert out.shape[:2] == (2, 3) and out.shape[-1] == out.shape[-2]
