"""The model-input conventions every mode shares: sizes in multiples of the model's stride, the
letterbox of prediction (validation data uses data.transforms.letterbox; both share one
resize-and-pad), and uint8 images scaled to [0, 1] floats (training, validation, prediction)."""

from __future__ import annotations

import math
from typing import Sequence

import cv2
import numpy as np
import torch

from mirrordet.data.transforms import RatioPad, resize_and_pad


def stride_multiple(size: int | float, stride: int) -> int:
    """The smallest multiple of ``stride`` that is >= ``size`` (at least one ``stride``)."""
    return max(int(math.ceil(size / stride)) * stride, stride)


def to_unit_float(images: torch.Tensor, half: bool = False) -> torch.Tensor:
    """uint8 images (any layout) -> float32 (float16 when ``half``) in [0, 1]: ``images / 255``."""
    return (images.half() if half else images.float()) / 255


def network_input(images: Sequence[np.ndarray], device: torch.device | str = "cpu", half: bool = False
                  ) -> torch.Tensor:
    """Same-shaped BGR uint8 images [H, W, 3] -> the network input [b, 3, H, W], RGB in [0, 1].

    The result is an NCHW view of NHWC (channels-last) memory, the layout the prediction models run in. On the CPU
    the batch's float buffer is allocated once and each image goes into its slot in two passes (BGR -> RGB by
    OpenCV into one reused uint8 scratch image, then ``/ 255`` by ``torch.div`` straight into the slot): no stacked
    uint8 batch and no intermediate float copy. On CUDA the uint8 batch crosses the bus (a quarter of the bytes)
    and is converted there. The caller's images are not modified.
    """
    device = torch.device(device)
    if device.type != "cpu":
        rgb = [cv2.cvtColor(im, cv2.COLOR_BGR2RGB) for im in images]
        arr = rgb[0][None] if len(rgb) == 1 else np.stack(rgb)  # [b, H, W, 3] uint8
        return to_unit_float(torch.from_numpy(arr).to(device, non_blocking=True), half).permute(0, 3, 1, 2)
    h, w = images[0].shape[:2]
    out = torch.empty((len(images), h, w, 3), dtype=torch.float16 if half else torch.float32)
    scratch = np.empty((h, w, 3), np.uint8)
    for slot, im in zip(out, images):
        cv2.cvtColor(im, cv2.COLOR_BGR2RGB, dst=scratch)
        torch.div(torch.from_numpy(scratch), 255, out=slot)
    return out.permute(0, 3, 1, 2)


def resized_long_side(h: int, w: int, min_size: int, max_size: int) -> float:
    """The long side an ``h`` x ``w`` image gets when its short side is scaled to ``min_size``, unless that would
    take its long side past ``max_size`` (then the long side is ``max_size``): torchvision's detection resize."""
    return max(h, w) * min(min_size / min(h, w), max_size / max(h, w))


def letterbox_rect(img: np.ndarray, imgsz: float, stride: int) -> tuple[np.ndarray, RatioPad]:
    """Resize the longer side to ``imgsz`` (bilinear) and pad both sides to multiples of ``stride``, centred.

    Args:
        img: BGR uint8 [h0, w0, 3].
        imgsz: target of the longer side (a multiple of ``stride``, or any size: :func:`resized_long_side`).
        stride: the model's largest stride.

    Returns:
        (image [H, W, 3] with H, W multiples of ``stride``, ratio_pad ((gain_h, gain_w), (pad_w, pad_h)))
        where an original pixel x maps to ``x * gain_w + pad_w``.
    """
    h0, w0 = img.shape[:2]
    r, cap = min(imgsz / h0, imgsz / w0), round(imgsz)
    h1, w1 = min(cap, max(1, round(h0 * r))), min(cap, max(1, round(w0 * r)))
    return resize_and_pad(img, (h1, w1), (stride_multiple(h1, stride), stride_multiple(w1, stride)), cv2.INTER_LINEAR)


def random_batch_scale(images: torch.Tensor, imgsz: int, stride: int, rng: np.random.Generator) -> torch.Tensor:
    """``multi_scale`` training: the batch [B, 3, S, S] resized (bilinear) to a random square side in
    [0.5, 1.5] x ``imgsz``, rounded down to a multiple of ``stride`` (at least one stride). Labels are normalized,
    so they need no change."""
    size = max(stride, int(rng.uniform(0.5 * imgsz, 1.5 * imgsz + stride)) // stride * stride)
    if size == images.shape[-1] and size == images.shape[-2]:
        return images
    return torch.nn.functional.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
