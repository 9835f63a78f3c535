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


@pytest.mark.parametrize("h, w, want", [(480, 640, 640 * 800 / 480),  # short side to 800
                                        (200, 1000, 1333.0),  # the long side would pass 1333: capped
                                        (800, 800, 800.0)])
def test_resized_long_side_is_torchvisions_rule(h, w, want):
    from mirrordet.data.preprocess import resized_long_side

    assert resized_long_side(h, w, 800, 1333) == pytest.approx(want)


def test_a_model_resize_rule_sizes_each_prediction_input():
    import numpy as np

    from mirrordet.engine.predictor import Predictor
    from mirrordet.nn.graph import ModelGraph

    body = ("nc: 2\nbackbone:\n  - [-1, 1, Conv, [8, 3, 2]]\n  - [-1, 1, Conv, [16, 3, 2]]\n  - [-1, 1, Conv, [16, 3, 2]]\n"
            "head:\n  - [[1, 2], 1, Detect, [nc]]\n")
    model = ModelGraph("resize: {min_size: 96, max_size: 160}\n" + body)
    assert model.resize == (96, 160) and ModelGraph(body).resize is None
    images = [np.zeros((48, 64, 3), np.uint8), np.zeros((20, 100, 3), np.uint8)]
    groups = Predictor(model, {"imgsz": 640}).preprocess(images)
    shapes = sorted(tuple(x.shape[-2:]) for x, _, _ in groups)
    # 48 x 64 -> 96 x 128 (short side 96); 20 x 100 -> 32 x 160 (long side capped at 160); padded to multiples of 32
    assert shapes == [(32, 160), (96, 128)]
    plain = Predictor(ModelGraph(body), {"imgsz": 64}).preprocess(images)
    assert sorted(tuple(x.shape[-2:]) for x, _, _ in plain) == [(32, 64), (64, 64)]  # imgsz fits the long side


def test_network_input_is_rgb_unit_float_channels_last_and_leaves_images_alone():
    import numpy as np

    from mirrordet.data.preprocess import network_input

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(3)]
    copies = [im.copy() for im in images]
    x = network_input(images)
    want = torch.from_numpy(np.stack([im[..., ::-1] for im in copies]).copy()).permute(0, 3, 1, 2).float() / 255
    assert x.shape == (3, 3, 48, 64) and x.dtype == torch.float32
    assert torch.equal(x, want)  # exactly images / 255, RGB
    assert x.is_contiguous(memory_format=torch.channels_last)
    assert all(np.array_equal(a, b) for a, b in zip(images, copies))
    one = network_input(images[:1])
    assert torch.equal(one, want[:1])
