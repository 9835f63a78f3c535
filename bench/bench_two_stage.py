"""Training step time of the two-stage refinements against the plain two-stage head (issue #19).

    python bench/bench_two_stage.py [--imgsz 256] [--batch 4] [--steps 6] [--models a.yaml,b.yaml]

Each model (its first scale, 4 classes) runs forward + loss + backward + an AdamW step on the same random batch (images
with two boxes each) in one process, one model after the other; the median of ``--steps`` timed steps after two
untimed ones is reported, with its ratio to faster-rcnn-csp-eca (the plain RPN + fc RoI head).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

MODELS = ("faster-rcnn-csp-eca.yaml", "faster-rcnn-csp-eca-ia.yaml", "faster-rcnn-csp-eca-cascade.yaml",
          "faster-rcnn-csp-doublehead.yaml", "faster-rcnn-csp-eca-cascade-ia.yaml", "faster-rcnn-csp.yaml",
          "faster-rcnn-csp-cbam.yaml", "faster-rcnn-r50-fpn.yaml")


def batch(b: int, imgsz: int) -> dict:
    g = torch.Generator().manual_seed(0)
    return {"img": torch.rand(b, 3, imgsz, imgsz, generator=g),
            "cls": torch.tensor([[0.0], [2.0]]).repeat(b, 1),
            "bboxes": torch.tensor([[0.3, 0.3, 0.2, 0.25], [0.65, 0.6, 0.4, 0.3]]).repeat(b, 1),
            "batch_idx": torch.arange(b).repeat_interleave(2).float()}


def step_ms(name: str, data: dict, steps: int) -> float:
    from mirrordet.losses.registry import build_loss
    from mirrordet.nn.graph import build_model

    torch.manual_seed(0)
    model = build_model(name, nc=4).train()
    loss_fn = build_loss(model.head, {})
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    times = []
    for i in range(steps + 2):
        t = time.perf_counter()
        loss, _ = loss_fn.evaluate(model(data["img"], data), data, data["img"].shape[0])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i >= 2:
            times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--imgsz", type=int, default=256)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated model YAMLs (the first is the base)")
    args = ap.parse_args()
    data = batch(args.batch, args.imgsz)
    results = {m: step_ms(m, data, args.steps) for m in args.models.split(",")}
    first, base = next(iter(results.items()))
    print(f"| model | step ms (median of {args.steps}) | vs {first.removesuffix('.yaml')} |\n|---|---:|---:|")
    for m, ms in results.items():
        print(f"| {m.removesuffix('.yaml')} | {ms:.0f} | {ms / base:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
