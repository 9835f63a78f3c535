"""Validation-sized NMS on CPU: mirrordet's per-image loop against one batch-wide call.

A batch of ``--batch`` dense outputs [B, 4 + nc, A] (random boxes, scores skewed low as an early model's are, so
most anchors pass conf 0.001) goes through :func:`mirrordet.ops.nms.dense_nms` (one ``batched_nms`` per image) and
through a loop-free alternative: every image's candidates in one ``torchvision.ops.nms`` call, kept apart by
offsetting each (image, class) group's boxes. Reported: the median of ``--repeats`` timed calls of each, one
torch thread.

    python bench/bench_nms.py --batch 16 --anchors 2100 --nc 4
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torchvision

from mirrordet.ops.boxes import xywh2xyxy
from mirrordet.ops.nms import NMSSettings, dense_nms


def batch_wide(pred: torch.Tensor, s: NMSSettings) -> torch.Tensor:
    """Indices kept by one NMS over the whole batch (boxes of different images or classes never overlap)."""
    x = pred.transpose(1, 2)
    nc = x.shape[2] - 4
    scores, labels = x[..., 4:].max(-1)
    img, anchor = (scores > s.conf).nonzero(as_tuple=True)
    boxes = xywh2xyxy(x[img, anchor, :4])
    offset = (img * nc + labels[img, anchor]).to(boxes)[:, None] * (boxes.max() + 1)
    return torchvision.ops.nms(boxes + offset, scores[img, anchor], s.iou)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--anchors", type=int, default=2100, help="A: 2100 at 320 px (strides 8, 16, 32)")
    ap.add_argument("--nc", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    b, a = args.batch, args.anchors
    pred = torch.cat([torch.rand(b, 2, a) * 320, torch.rand(b, 2, a) * 60 + 4, torch.rand(b, args.nc, a) ** 4], 1)
    s = NMSSettings(conf=0.001, iou=0.7, max_det=300, multi_label=False)
    arms = (("per image (dense_nms)", lambda: dense_nms(pred, s)), ("batch-wide", lambda: batch_wide(pred, s)))
    for name, fn in arms:
        fn()
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t) * 1e3)
        print(f"| {name} | {statistics.median(times):.1f} ms |")


if __name__ == "__main__":
    main()
