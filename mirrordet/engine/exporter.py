"""Export to TorchScript, ONNX or OpenVINO, then prove the exported file reproduces the PyTorch outputs.

The exported graph is the fused (Conv+BN folded) eval-mode model: input ``images``
[B, 3, H, W] float RGB in [0, 1]; output ``output0``: [B, 4 + nc, A] (xywh boxes in input
pixels, sigmoid scores; NMS is not part of the graph) for detectors, [B, nc] softmax
probabilities for classifiers; segmentation models add their mask coefficients to ``output0``
([B, 4 + nc + nm, A]) and give the prototypes as ``output1`` ([B, nm, H/4, W/4]). The exporter runs the exported file (torch.jit.load /
onnxruntime) next to the PyTorch model on random inputs at the export shape and, with
``dynamic=True``, at a second batch size and image size, and raises :class:`ExportError`
when an output differs by more than 1e-4 (absolute, or relative for values above 1, such as
pixel coordinates).

With ``nms=True`` (detectors) the graph ends with NMS (:mod:`mirrordet.engine.export_nms`): ``output0`` is
[B, max_det, 6] rows (x1, y1, x2, y2 pixels, score, class) for a fixed batch size.

Metadata (task, class names, strides, imgsz, batch, dynamic, the model YAML with nc and scale, the training
dataset, the NMS settings) travels inside the file: ONNX ``metadata_props``, TorchScript
``_extra_files["metadata.json"]``, OpenVINO ``metadata.json``; :mod:`mirrordet.engine.exported_model` reads it to run
the file as a ``predict`` / ``val`` backend.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import numpy as np
import torch
from torch import nn

from mirrordet.nn.graph import ModelGraph
from mirrordet.utils.errors import ConfigError, ExportError
from mirrordet.utils.files import atomic_save, atomic_write_bytes
from mirrordet.utils.log import LOGGER
from mirrordet.version import __version__

TOLERANCE = 1e-4
FORMATS = {"torchscript": ".torchscript", "onnx": ".onnx", "openvino": "_openvino_model"}  # openvino: a folder


@dataclass
class ExportReport:
    """What an export produced and how it was checked.

    Attributes:
        path: the exported file.
        format: ``"torchscript"`` or ``"onnx"``.
        checks: per checked input shape, the max absolute difference to PyTorch.
        simplified: whether an ONNX simplifier ran.
    """

    path: Path
    format: str
    checks: dict[tuple[int, ...], float] = field(default_factory=dict)
    simplified: bool = False

    @property
    def max_diff(self) -> float:
        return max(self.checks.values()) if self.checks else float("nan")


def compare_outputs(ref: np.ndarray, got: np.ndarray, what: str) -> float:
    """Max absolute difference of two outputs; raises :class:`ExportError` beyond the tolerance.

    The test is ``|got - ref| <= 1e-4 * max(1, |ref|)`` element-wise.
    """
    if ref.shape != got.shape:
        raise ExportError(f"{what}: exported output has shape {got.shape}, PyTorch gives {ref.shape}")
    if not np.isfinite(got).all():
        raise ExportError(f"{what}: exported output contains NaN or inf")
    diff = np.abs(got.astype(np.float64) - ref.astype(np.float64))
    bad = diff > TOLERANCE * np.maximum(1.0, np.abs(ref))
    if bad.any():
        raise ExportError(f"{what}: exported output differs from PyTorch by up to {diff.max():.3g} "
                          f"({int(bad.sum())} of {bad.size} values beyond the 1e-4 tolerance); the file is not usable")
    return float(diff.max())


def check_shapes(imgsz: int, stride: int, batch: int, dynamic: bool) -> list[tuple[int, int, int, int]]:
    """Input shapes checked after export: the export shape, plus another batch and H != W when dynamic."""
    shapes = [(batch, 3, imgsz, imgsz)]
    if dynamic:
        h2 = max(stride, (imgsz // 2 // stride) * stride)
        shapes.append((batch + 1, 3, h2, imgsz + stride))
    return shapes


def output_names(task: str) -> list[str]:
    """The exported graph's outputs: ``output0`` (plus ``output1``, the prototypes, for the segment task)."""
    return ["output0", "output1"] if task == "segment" else ["output0"]


def as_arrays(out: Any) -> list[np.ndarray]:
    """A model's output (one tensor or a tuple of them) as float numpy arrays, in order."""
    outs = out if isinstance(out, (tuple, list)) else (out,)
    return [o.float().cpu().numpy() if isinstance(o, torch.Tensor) else np.asarray(o, np.float32) for o in outs]


def _metadata(net: ModelGraph, imgsz: int, batch: int, dynamic: bool, source: str,
              train_args: Mapping[str, Any] | None = None) -> dict[str, str]:
    """What a runtime needs besides the graph: task, names, strides, input shape, and the model YAML (with nc and
    scale) from which ``predict`` / ``val`` rebuild the head that decodes the output
    (:mod:`mirrordet.engine.exported_model`); the dataset the model was trained on, when known."""
    meta = {"producer": f"mirrordet {__version__}", "task": str(net.task), "source": source,
            "names": json.dumps({int(k): str(v) for k, v in net.names.items()}),
            "stride": json.dumps([float(s) for s in net.stride.tolist()]), "imgsz": str(imgsz),
            "batch": str(batch), "dynamic": str(bool(dynamic)), "model_yaml": net.yaml_text, "nc": str(net.nc),
            "scale": str(net.scale or "")}
    data = (train_args or {}).get("data")
    if isinstance(data, str) and data:
        meta["data"] = data
    return meta


@contextlib.contextmanager
def _quiet_tracing() -> Iterator[None]:
    """Tracer and exporter deprecation warnings are noise here: the file is checked numerically."""
    with warnings.catch_warnings():
        for category in (torch.jit.TracerWarning, FutureWarning, DeprecationWarning):
            warnings.simplefilter("ignore", category)
        yield


def export_torchscript(net: nn.Module, sample: torch.Tensor, path: Path, meta: Mapping[str, str]) -> Callable:
    """Trace ``net`` on ``sample`` and save it (atomically); returns a runner ``x -> output (numpy)`` of the file."""
    try:
        with _quiet_tracing():
            traced = torch.jit.trace(net, sample, check_trace=False, strict=False)
            extra = {"metadata.json": json.dumps(dict(meta))}
            atomic_save(path, lambda b: torch.jit.save(traced, b, _extra_files=extra))
            loaded = torch.jit.load(str(path), map_location=sample.device)
    except Exception as e:  # tracing failures come in many types; all mean the same to the user
        raise ExportError(f"TorchScript export of {meta.get('source')} failed: {type(e).__name__}: {e}") from None
    loaded.eval()

    def run(x: torch.Tensor) -> list[np.ndarray]:
        with torch.inference_mode():
            return as_arrays(loaded(x))

    return run


def _onnx_simplify(model: Any) -> tuple[Any, bool]:
    """Simplify an in-memory ONNX model with onnxslim or onnxsim when importable; returns (model, whether one ran)."""
    if importlib.util.find_spec("onnxslim") is not None:
        import onnxslim

        return onnxslim.slim(model), True
    if importlib.util.find_spec("onnxsim") is not None:
        import onnxsim

        simplified, ok = onnxsim.simplify(model)
        if not ok:
            raise ExportError("onnxsim could not validate the simplified graph; export with simplify=False")
        return simplified, True
    LOGGER.warning("WARNING simplify=True: neither onnxslim nor onnxsim is installed (pip install onnxslim); "
                   "the ONNX file was written without simplification")
    return model, False


def export_onnx(net: nn.Module, sample: torch.Tensor, path: Path, meta: Mapping[str, str], opset: int, dynamic: bool,
                simplify: bool) -> tuple[Callable | None, bool]:
    """Write ``path`` (atomically) with torch's TorchScript-based ONNX exporter.

    Returns:
        (onnxruntime runner ``x -> [outputs]`` of the written file, or None without onnxruntime; simplified).
    """
    simplified = write_onnx(net, sample, path, meta, opset, dynamic, simplify)
    if importlib.util.find_spec("onnxruntime") is None:
        LOGGER.warning(f"WARNING onnxruntime is not installed: {path} was not checked against PyTorch "
                       "(pip install 'mirrordet[export]')")
        return None, simplified
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def run(x: torch.Tensor) -> list[np.ndarray]:
        return list(session.run(None, {"images": x.float().cpu().numpy()}))

    return run, simplified


def write_onnx(net: nn.Module, sample: torch.Tensor, path: Path, meta: Mapping[str, str], opset: int, dynamic: bool,
               simplify: bool) -> bool:
    """The ONNX file of ``net`` traced on ``sample`` (checked by onnx, metadata attached), written atomically;
    returns whether a simplifier ran."""
    if importlib.util.find_spec("onnx") is None:
        raise ConfigError("format=onnx needs the onnx package: pip install 'mirrordet[export]' (onnx, onnxruntime)")
    import onnx

    names = output_names(str(meta.get("task")))
    axes = {"images": {0: "batch", 2: "height", 3: "width"}, "output0": {0: "batch"}} if dynamic else None
    if axes and net.task in ("detect", "segment") and not hasattr(net, "max_det"):
        axes["output0"][2] = "anchors"
    if axes and len(names) > 1:
        axes["output1"] = {0: "batch", 2: "proto_height", 3: "proto_width"}
    buf = io.BytesIO()
    try:
        with _quiet_tracing():
            torch.onnx.export(net, (sample,), buf, opset_version=int(opset), input_names=["images"],
                              output_names=names, dynamic_axes=axes, do_constant_folding=True, dynamo=False)
    except Exception as e:  # exporter failures come in many types; all mean the same to the user
        raise ExportError(f"ONNX export (opset {opset}) of {meta.get('source')} failed: "
                          f"{type(e).__name__}: {e}") from None
    model = onnx.load_model_from_string(buf.getvalue())
    simplified = False
    if simplify:
        model, simplified = _onnx_simplify(model)
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as e:
        raise ExportError(f"{path}: the exported ONNX graph is invalid: {e}") from None
    for k, v in meta.items():
        model.metadata_props.add(key=k, value=v)
    atomic_write_bytes(path, model.SerializeToString())
    return simplified


def sorted_rows(out: np.ndarray) -> np.ndarray:
    """[B, N, 6] detection rows in a canonical order (score descending, then the box and class): NMS outputs of two
    runtimes may list boxes of equal score in a different order."""
    keys = lambda r: np.lexsort((r[:, 5], r[:, 3], r[:, 2], r[:, 1], r[:, 0], -r[:, 4]))  # noqa: E731
    return np.stack([r[keys(r)] for r in out])


def verify(net: nn.Module, run: Callable, shapes: list[tuple[int, int, int, int]], device: torch.device,
           dtype: torch.dtype, path: Path, gen: torch.Generator,
           canonical: Callable[[np.ndarray], np.ndarray] | None = None) -> dict[tuple[int, ...], float]:
    """Run the exported file and ``net`` on random inputs of each shape; returns max |diff| per shape
    (of ``canonical(output)`` when given).

    Raises:
        ExportError: the file fails to run at a shape, or differs beyond the tolerance.
    """
    checks = {}
    for shape in shapes:
        x = torch.rand(*shape, generator=gen).to(device, dtype)
        with torch.inference_mode():
            refs = as_arrays(net(x))
        try:
            gots = run(x)
        except Exception as e:  # onnxruntime / TorchScript interpreter errors
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ExportError(f"{path} fails at input {shape} although PyTorch runs it: {first}; export without "
                              "dynamic=True or at the size you will use") from None
        if len(gots) != len(refs):
            raise ExportError(f"{path} gives {len(gots)} outputs, PyTorch {len(refs)}")
        if canonical is not None:
            refs, gots = [canonical(r) for r in refs], [canonical(g) for g in gots]
        checks[shape] = max(compare_outputs(r, g, f"{path} at input {shape}, output {k}")
                            for k, (r, g) in enumerate(zip(refs, gots)))
    return checks


def _with_nms(net: nn.Module, graph: ModelGraph, cfg: Mapping[str, Any], source: str) -> nn.Module:
    """``nms=True``: the fused detector followed by NMS in the graph (engine/export_nms.py)."""
    from mirrordet.engine.export_nms import NMSModel

    if graph.task != "detect" or getattr(graph.head, "end2end", False):
        why = {"detect": "an end-to-end head needs none", "segment": "a segmentation model's masks are not supported "
               "with it yet"}.get(graph.task, "a classifier has none")
        raise ConfigError(f"{source}: nms=True applies to detectors decoded with NMS; {why}")
    if cfg["dynamic"]:
        raise ConfigError("nms=True exports a fixed batch size (the per-image NMS loop is unrolled); use dynamic=False")
    conf = 0.25 if cfg["conf"] is None else cfg["conf"]
    return NMSModel(net, conf, cfg["iou"], cfg["max_det"], cfg["agnostic_nms"]).eval()


def export_model(net: ModelGraph, overrides: Mapping[str, Any] | None = None,
                 train_args: Mapping[str, Any] | None = None, source: str | None = None) -> ExportReport:
    """`mirrordet export` / ``Model.export``: export, check against PyTorch, return the report.

    Settings used: format (torchscript | onnx), imgsz (default: the checkpoint's training size,
    else 640), batch (default 1 here), opset, dynamic, simplify, device and half (TorchScript only:
    traced on that device, FP16 on CUDA; ONNX graphs are traced and checked on the CPU in float32),
    project/name/exist_ok (where a model built from YAML is written; a ``.pt`` model is exported
    next to its checkpoint, ``best.pt`` -> ``best.onnx``).

    ``train_args`` are the network's training settings (its checkpoint's) and ``source`` the model
        file or name it was made from (default ``net.source``; it names the exported file).

    Raises:
        ConfigError: bad settings or a missing optional package. ExportError: the export failed or the
        exported file does not reproduce the PyTorch outputs.
    """
    from mirrordet.data.preprocess import stride_multiple
    from mirrordet.engine.inference import prepare_model
    from mirrordet.engine.run_dir import run_dir
    from mirrordet.engine.setup import mode_settings
    from mirrordet.utils.torch_utils import select_device

    source = str(source or net.source)
    cfg = mode_settings("export", dict(overrides or {}), train_args)
    fmt, graph = cfg["format"], net
    if graph.task not in ("detect", "segment", "classify"):
        raise ConfigError(f"{source}: export supports detect, segment and classify models, not a "
                          f"{type(graph.head).__name__} head")
    if not graph.head.traceable:
        raise ConfigError(f"{source}: export supports heads whose eval output a traced graph reproduces "
                          f"(YOLO Detect, Classify); the {type(graph.head).__name__} head is not traceable (its eval "
                          "pass may depend on the data, which a traced graph would freeze)")
    stride = graph.max_stride
    imgsz = stride_multiple(int(cfg["imgsz"]), stride)
    if imgsz != cfg["imgsz"]:
        LOGGER.warning(f"imgsz={cfg['imgsz']} is not a multiple of the max stride {stride}; exporting at {imgsz}")
    device = select_device(cfg["device"] if cfg["device"] is not None and fmt == "torchscript" else "cpu")
    half = bool(cfg["half"]) and device.type == "cuda"
    if cfg["half"] and not half:
        LOGGER.warning("half=True applies to TorchScript on a CUDA device only; exporting float32")
    net = prepare_model(graph, device, half)
    if cfg["nms"]:
        net = _with_nms(net, graph, cfg, source)
    src = Path(source)
    if src.suffix in (".pt", ".pth"):
        out_dir = src.parent
    else:
        out_dir = run_dir(graph.task, "export", cfg["project"], cfg["name"], cfg["exist_ok"])
    path = out_dir / f"{src.stem}{FORMATS[fmt]}"
    meta = _metadata(graph, imgsz, cfg["batch"], cfg["dynamic"], source, train_args)
    if cfg["nms"]:
        meta["nms"] = json.dumps({"conf": net.conf, "iou": net.iou, "max_det": net.max_det, "agnostic": net.agnostic,
                                  "output": "[B, max_det, 6] x1 y1 x2 y2 score class"})
    dtype = torch.half if half else torch.float32
    gen = torch.Generator().manual_seed(0)
    sample = torch.rand(cfg["batch"], 3, imgsz, imgsz, generator=gen).to(device, dtype)
    kind = "dynamic" if cfg["dynamic"] else "static"
    LOGGER.info(f"Exporting {source} to {fmt} ({tuple(sample.shape)}, {kind} "
                f"shape{', opset ' + str(cfg['opset']) if fmt == 'onnx' else ''})")
    report = ExportReport(path, fmt)
    if fmt == "onnx":
        run, report.simplified = export_onnx(net, sample, path, meta, cfg["opset"], cfg["dynamic"], cfg["simplify"])
    elif fmt == "openvino":
        from mirrordet.engine.export_openvino import export_openvino

        run = export_openvino(lambda f: write_onnx(net, sample, f, meta, cfg["opset"], cfg["dynamic"], False), path, meta)
    else:
        run = export_torchscript(net, sample, path, meta)
    if run is not None:
        try:
            report.checks = verify(net, run, check_shapes(imgsz, stride, cfg["batch"], cfg["dynamic"]), device, dtype,
                                   path, gen, sorted_rows if cfg["nms"] else None)
        except ExportError as e:
            shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
            why = (" NMS among equal scores may keep different boxes in two runtimes; an untrained model scores "
                   "many boxes alike") if cfg["nms"] else ""
            raise ExportError(f"{e} ({path.name} was removed).{why}") from None
        checked = ", ".join(f"{list(s)}: {d:.2g}" for s, d in report.checks.items())
        LOGGER.info(f"Verified {path.name} against PyTorch, max |difference| per input shape: {checked}")
    size = sum(f.stat().st_size for f in ([path] if path.is_file() else path.rglob("*"))) / 2**20
    LOGGER.info(f"Export complete: {path} ({size:.1f} MB)")
    return report
