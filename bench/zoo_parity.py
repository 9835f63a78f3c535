"""Zoo parity against an Ultralytics install: every detect/classify model YAML it ships builds in
mirrordet with the same parameter count and state-dict layout, and (with shared weights) the same
eval output.

    /path/to/venv-with-ultralytics/bin/python bench/zoo_parity.py [--numeric] [--out table.md]

Ultralytics is never a dependency of mirrordet: run this from a separate virtual environment that
has both installed (``python -m venv --system-site-packages`` over mirrordet's environment, then
``pip install ultralytics``). tests/nn/test_ultralytics_zoo.py runs the same checks under pytest
and skips when Ultralytics is missing.

Files compared: all of ``ultralytics/cfg/models/**.yaml`` but the text-prompt (YOLO-World, YOLOE),
RT-DETR, depth / semantic, segment / pose / OBB (other tasks) and yolo11-cls-resnet18 files.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml

SKIPPED = ("yoloe", "world", "rtdetr", "depth", "sem", "seg", "pose", "obb", "cls-resnet18")


@dataclass
class PairResult:
    """One (file, scale) compared."""

    file: str
    scale: str | None
    params: int | str  # mirrordet's count, or the build error
    reference: int
    layout_diff: list[str]  # state-dict keys missing on either side or of another shape
    max_abs_diff: float | None = None  # eval output, shared weights (with --numeric)

    @property
    def equal(self) -> bool:
        return self.params == self.reference and not self.layout_diff


def models_root() -> Path:
    """ultralytics/cfg/models of the Ultralytics install (ImportError without one)."""
    import ultralytics

    logging.getLogger("ultralytics").setLevel(logging.ERROR)
    return Path(ultralytics.__file__).parent / "cfg" / "models"


def reference_pairs(root: Path) -> list[tuple[Path, str | None]]:
    """Every (file, scale) to compare, in a stable order."""
    pairs = []
    for path in sorted(root.rglob("*.yaml")):
        if any(s in path.name for s in SKIPPED):
            continue
        scales = yaml.safe_load(path.read_text()).get("scales") or {None: None}
        pairs += [(path, s) for s in scales]
    return pairs


def reference_model(path: Path, scale: str | None) -> torch.nn.Module:
    """Ultralytics' model of ``path`` at ``scale`` (its own builder)."""
    from ultralytics.nn.tasks import ClassificationModel, DetectionModel

    d = yaml.safe_load(path.read_text())
    if scale:
        d["scale"] = scale
    kind = ClassificationModel if "-cls" in path.name else DetectionModel
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return kind(d, verbose=False)


def reference_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Ultralytics' state dict with mirrordet's layer prefix (``model.<i>`` -> ``layers.<i>``)."""
    return {k.replace("model.", "layers.", 1): v for k, v in model.state_dict().items()}


def layout_diff(mine: dict[str, torch.Tensor], ref: dict[str, torch.Tensor]) -> list[str]:
    """Keys on one side only or of different shapes (mirrordet's head ``stride`` buffer excepted)."""
    out = [f"mirrordet only: {k}" for k in mine if k not in ref and not k.endswith(".stride")]
    out += [f"reference only: {k}" for k in ref if k not in mine]
    out += [f"shape {k}: {tuple(v.shape)} vs {tuple(ref[k].shape)}" for k, v in mine.items()
            if k in ref and v.shape != ref[k].shape]
    return out


def eval_difference(mine: torch.nn.Module, ref: torch.nn.Module) -> float:
    """Largest |difference| of the eval outputs on one random batch, mirrordet loaded with the
    reference weights (BatchNorm statistics randomized first, so BN is not the identity).

    End-to-end heads: both libraries' one-to-one branches are compared on their raw maps
    (mirrordet decodes that branch in eval, the reference returns it beside its one-to-many decode).
    """
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for k, v in ref.state_dict().items():
            if k.endswith("running_var"):
                v.copy_(torch.rand(v.shape, generator=gen) + 0.5)
            elif k.endswith("running_mean"):
                v.copy_(torch.rand(v.shape, generator=gen) * 0.2 - 0.1)
        mine.load_state_dict(reference_state(ref), strict=False)
        mine.eval(), ref.eval()
        bn = next((m for m in ref.modules() if isinstance(m, torch.nn.BatchNorm2d)), None)
        if bn is not None and mine.task == "classify":  # Ultralytics' classifiers keep PyTorch's BN constants,
            from mirrordet.nn.init import set_batchnorm  # which a `batchnorm:` line gives mirrordet (the importer
            set_batchnorm(mine, bn.eps, bn.momentum)     # writes it); mirrordet's own default is eps 1e-3

        size = (224, 224) if mine.task == "classify" else (128, 192)  # multiples of 64 (P6 files)
        x = torch.rand(1, 3, *size, generator=gen)
        got, want = mine(x), ref(x)
        if getattr(mine.head, "end2end", False):
            h = mine.head
            feats = _head_inputs(mine, x)
            maps = h._maps(feats, h.one2one_cv2, h.one2one_cv3)
            flat = torch.cat([f.flatten(2) for f in maps], 2)
            o2o = want[1]["one2one"]
            want = torch.cat([o2o["boxes"], o2o["scores"]], 1)
            got = flat
        elif isinstance(want, (tuple, list)):
            want = want[0]
        if mine.task == "classify":  # log-probabilities: 1000 near-uniform probabilities hide any difference
            got, want = got.clamp_min(1e-30).log(), want.clamp_min(1e-30).log()
        return float((got - want).abs().max())


def _head_inputs(model: torch.nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """The feature maps the head of a mirrordet ModelGraph reads for input ``x``."""
    seen: dict[str, list[torch.Tensor]] = {}
    handle = model.head.register_forward_pre_hook(lambda m, args: seen.__setitem__("x", list(args[0])))
    try:
        model(x)
    finally:
        handle.remove()
    return seen["x"]


def compare(path: Path, scale: str | None, root: Path, numeric: bool = False) -> PairResult:
    """Build ``path`` at ``scale`` with both libraries and compare them."""
    from mirrordet.nn import build_model
    from mirrordet.utils.errors import MirrordetError

    ref = reference_model(path, scale)
    ref_params = sum(p.numel() for p in ref.parameters())
    name = str(path.relative_to(root))
    try:
        mine = build_model(str(path), scale=scale)
    except MirrordetError as e:
        return PairResult(name, scale, f"error: {e}", ref_params, [])
    result = PairResult(name, scale, sum(p.numel() for p in mine.parameters()), ref_params,
                        layout_diff(mine.state_dict(), reference_state(ref)))
    if numeric and result.equal:
        result.max_abs_diff = eval_difference(mine, ref)
    return result


def markdown(results: list[PairResult]) -> str:
    """The results as a markdown table."""
    lines = ["| file | scale | mirrordet params | Ultralytics params | layout | max abs diff (eval) |",
             "|---|---|---:|---:|---|---:|"]
    for r in results:
        params = f"{r.params:,}" if isinstance(r.params, int) else r.params
        layout = "same" if not r.layout_diff else f"{len(r.layout_diff)} differences"
        diff = "" if r.max_abs_diff is None else f"{r.max_abs_diff:.2e}"
        lines.append(f"| {r.file} | {r.scale or '-'} | {params} | {r.reference:,} | {layout} | {diff} |")
    equal = sum(r.equal for r in results)
    lines.append(f"\n{equal} of {len(results)} (file, scale) pairs equal in count and layout.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--numeric", action="store_true", help="also compare eval outputs with shared weights")
    ap.add_argument("--first-scale-only", action="store_true", help="one scale per file (faster)")
    ap.add_argument("--out", type=Path, help="write the markdown table here")
    ap.add_argument("--only", help="compare only the files whose name contains this text (e.g. -cls)")
    args = ap.parse_args(argv)
    root = models_root()
    pairs, results, seen = reference_pairs(root), [], set()
    t0 = time.perf_counter()
    for path, scale in pairs:
        if (args.first_scale_only and path in seen) or (args.only and args.only not in path.name):
            continue
        seen.add(path)
        results.append(compare(path, scale, root, numeric=args.numeric))
        r = results[-1]
        print(f"{r.file:36s} {str(r.scale):4s} {'equal' if r.equal else 'DIFFERENT'} {r.params} {r.reference}"
              + ("" if r.max_abs_diff is None else f" diff {r.max_abs_diff:.2e}"), flush=True)
    table = markdown(results)
    print(f"\n{table}\n({time.perf_counter() - t0:.0f} s)")
    if args.out:
        args.out.write_text(table + "\n")
    return 0 if all(r.equal for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
