"""Exported files as inference backends: ``model=best.onnx``, ``best.torchscript`` or ``best_openvino_model/`` for
``predict`` and ``val``, as Ultralytics users run them.

An :class:`ExportedNetwork` stands where a :class:`~mirrordet.nn.graph.ModelGraph` stands for the predictor and
the validator: it has the graph's ``task``, ``names``, ``nc``, ``stride``, ``max_stride`` and ``head``, and calling
it on ``x`` [B, 3, H, W] (float RGB in [0, 1]) returns the head's eval output computed by the runtime
(onnxruntime, TorchScript or OpenVINO). Everything comes from the metadata the exporter stored in the file:

- ``head`` is the head of the model rebuilt from the stored model YAML (``model_yaml``, ``nc``, ``scale``), so the
  exported output is decoded exactly as the PyTorch model's (NMS, NMS-free top-k, masks from prototypes). An
  ``nms=True`` export ends with NMS already: its [B, max_det, 6] rows are read by :class:`ExportedRowsHead`.
- A fixed-shape export (``dynamic=False``) takes only its export shape: inputs are letterboxed to the square
  ``imgsz`` (``input_multiple`` = imgsz) and a batch runs in chunks of the export batch size, the last one padded.
  A dynamic export takes any size that is a multiple of the largest stride, and any batch.

Loading a ``.torchscript`` file runs the TorchScript program it holds (that is what the format is); ONNX and
OpenVINO files are graphs run by their runtimes.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import numpy as np
import torch

from mirrordet.nn.graph import ModelGraph, max_input_stride
from mirrordet.ops.detections import Detections
from mirrordet.ops.nms import NMSSettings
from mirrordet.utils.errors import CheckpointError, ConfigError
from mirrordet.utils.log import LOGGER

EXPORTED_SUFFIXES = (".onnx", ".torchscript")
OPENVINO_SUFFIX = "_openvino_model"


def is_exported(model: str | Path) -> bool:
    """Whether ``model`` names an exported file (``.onnx``, ``.torchscript``) or OpenVINO folder."""
    name = str(model).rstrip("/")
    return Path(name).suffix in EXPORTED_SUFFIXES or name.endswith(OPENVINO_SUFFIX)


class ExportedRowsHead:
    """The decoder of an ``nms=True`` export: output [B, max_det, 6] rows (x1, y1, x2, y2 input pixels, score,
    class), NMS done in the graph with the settings stored at export (``iou``, ``agnostic``). A call's ``conf``,
    ``classes`` and ``max_det`` filter the rows further."""

    task = "detect"

    def postprocess(self, preds: torch.Tensor, nms: NMSSettings) -> list[Detections]:
        """[B, max_det, 6] rows -> per image :class:`Detections`, best first."""
        return list(self.postprocess_each(preds, nms))

    def postprocess_each(self, preds: torch.Tensor, nms: NMSSettings) -> Iterator[Detections]:
        for rows in preds.float():
            keep = rows[:, 4] > max(nms.conf, 0.0)
            if nms.classes is not None:
                keep &= torch.isin(rows[:, 5].long(), torch.tensor(nms.classes, device=rows.device))
            rows = rows[keep]
            rows = rows[rows[:, 4].argsort(descending=True, stable=True)][: nms.max_det]
            yield Detections.from_rows(rows)


def open_exported(path: Path, device: torch.device) -> tuple[dict[str, str], Callable[[torch.Tensor], list]]:
    """Load an exported file or OpenVINO folder once: (the exporter's metadata as strings, a runner ``x -> [outputs]``
    as tensors). ONNX and OpenVINO run on the CPU, TorchScript on ``device``.

    Raises:
        CheckpointError: the file is missing, unreadable or has no mirrordet metadata.
    """
    if not path.exists():
        raise CheckpointError(f"{path} does not exist (looked for {path.resolve()})")
    try:
        meta, run = _load(path, device)
    except (CheckpointError, ConfigError):
        raise
    except Exception as e:  # runtimes raise their own exception types for corrupt files
        raise CheckpointError(f"{path} is not a readable exported model: {type(e).__name__}: "
                              f"{(str(e).strip().splitlines() or [''])[0][:200]}") from None
    if "task" not in meta or "names" not in meta:
        raise CheckpointError(f"{path} has no mirrordet metadata (task, names): export it with `mirrordet export`")
    return {str(k): str(v) for k, v in meta.items()}, run


def _load(path: Path, device: torch.device) -> tuple[Mapping[str, Any], Callable[[torch.Tensor], list]]:
    if path.suffix == ".onnx":
        ort = _import("onnxruntime", "model=*.onnx")
        options = ort.SessionOptions()
        # torch's thread count, and no spinning after a run: idle onnxruntime threads that spin take the CPU
        # from the pre- and postprocessing around each call (measured: 15 ms preprocess instead of 1 ms)
        options.intra_op_num_threads = torch.get_num_threads()
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return (session.get_modelmeta().custom_metadata_map,
                lambda x: [torch.from_numpy(o) for o in session.run(None, {"images": _np(x)})])
    if path.suffix == ".torchscript":
        files = {"metadata.json": ""}
        module = torch.jit.load(str(path), map_location=device, _extra_files=files).eval()

        def run_ts(x: torch.Tensor) -> list[torch.Tensor]:
            with torch.inference_mode():
                out = module(x.to(device))
            return [o.float() for o in (out if isinstance(out, (tuple, list)) else (out,))]

        return json.loads(files["metadata.json"] or "{}"), run_ts
    meta = json.loads((path / "metadata.json").read_text())
    ov = _import("openvino", "model=*_openvino_model")
    xml = next(path.glob("*.xml"), None)
    if xml is None:
        raise CheckpointError(f"{path} holds no OpenVINO .xml graph")
    compiled = ov.Core().compile_model(str(xml), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    return meta, lambda x: [torch.from_numpy(np.asarray(v)) for v in compiled(_np(x)).values()]


def _import(module: str, what: str) -> Any:
    if importlib.util.find_spec(module) is None:
        raise ConfigError(f"{what} needs the {module} package: pip install 'mirrordet[export]'")
    return importlib.import_module(module)


class ExportedNetwork:
    """An exported model run by its runtime, with the interface the predictor and validator use (see the module
    docstring).

    Args:
        path: ``.onnx`` / ``.torchscript`` file or ``*_openvino_model`` folder written by ``mirrordet export``.
        device: where TorchScript runs (ONNX and OpenVINO run on the CPU).

    Raises:
        CheckpointError: unreadable file, no metadata, or metadata without the model YAML (an export of an
            earlier mirrordet: export again).
    """

    training = False

    def __init__(self, path: str | Path, device: str | torch.device = "cpu") -> None:
        self.path = Path(str(path).rstrip("/"))
        self.format = {".onnx": "onnx", ".torchscript": "torchscript"}.get(self.path.suffix, "openvino")
        self.meta, self._run = open_exported(self.path, torch.device(device))
        meta = self.meta
        self.source = str(self.path)
        self.task = meta["task"]
        self.names = {int(k): v for k, v in json.loads(meta["names"]).items()}
        self.nc = len(self.names)
        self.stride = torch.tensor(json.loads(meta.get("stride", "[32]")), dtype=torch.float32)
        self.imgsz, self.batch = int(meta.get("imgsz", 640)), int(meta.get("batch", 1))
        self.dynamic = meta.get("dynamic", "False") == "True"
        self.train_args = {"imgsz": self.imgsz, **({"data": meta["data"]} if meta.get("data") else {})}
        self.head = self._head(meta)
        LOGGER.info(f"Loaded {self.path.name} ({self.format}, {self.task}, {self.nc} classes, "
                    f"{'dynamic shape' if self.dynamic else f'fixed input {self.batch}x3x{self.imgsz}x{self.imgsz}'})")

    @property
    def max_stride(self) -> int:
        """The largest input stride, at least 32 (as :attr:`ModelGraph.max_stride`)."""
        return max_input_stride(self.stride)

    @property
    def input_multiple(self) -> int:
        """Letterboxed inputs are padded to multiples of this: the max stride, or the export's square size when the
        file takes one shape only."""
        return self.max_stride if self.dynamic else self.imgsz

    def _head(self, meta: Mapping[str, str]) -> Any:
        if "nms" in meta:
            return ExportedRowsHead()
        if "model_yaml" not in meta:
            raise CheckpointError(f"{self.path} was exported by an earlier mirrordet without its model YAML in the "
                                  "metadata: export it again to run it with predict/val")
        scale = meta.get("scale") or None
        graph = ModelGraph(meta["model_yaml"], nc=self.nc, scale=scale, source=str(self.path))
        return graph.head  # only its decoding is used (the exported file holds the weights)

    def __call__(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """x [B, 3, H, W] -> the head's eval output (one tensor, or a tuple for two outputs)."""
        if not self.dynamic and tuple(x.shape[1:]) != (3, self.imgsz, self.imgsz):
            raise ConfigError(f"{self.path.name} was exported for input {self.batch}x3x{self.imgsz}x{self.imgsz} "
                              f"(dynamic=False) and cannot run {list(x.shape)}: use imgsz={self.imgsz}, or export "
                              "with dynamic=True")
        if self.dynamic or x.shape[0] == self.batch:  # one runtime call, its outputs as they come
            outs = self._run(x.float())
            return outs[0] if len(outs) == 1 else tuple(outs)
        step = self.batch
        parts = []
        for i in range(0, x.shape[0], step):
            chunk = x[i:i + step].float()
            n = chunk.shape[0]
            if n < step:  # a fixed batch size: pad the last chunk, drop the padding's outputs
                chunk = torch.cat([chunk, chunk.new_zeros(step - n, *chunk.shape[1:])])
            parts.append([o[:n] for o in self._run(chunk)])
        outs = [torch.cat(group) for group in zip(*parts)]
        return outs[0] if len(outs) == 1 else tuple(outs)

    # the nn.Module calls the validator makes on a model
    def eval(self) -> "ExportedNetwork":
        return self

    def train(self, mode: bool = True) -> "ExportedNetwork":
        if mode:
            raise ConfigError(f"{self.path.name} is an exported model: it can be validated and predicted with, "
                              "not trained (train from the .pt checkpoint)")
        return self


def _np(x: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(x.detach().float().cpu().numpy())
