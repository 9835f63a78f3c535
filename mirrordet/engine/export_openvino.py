"""OpenVINO export: the checked ONNX graph converted by OpenVINO's model converter into an IR folder.

``<stem>_openvino_model/`` holds ``<stem>.xml`` (the graph), ``<stem>.bin`` (float32 weights) and
``metadata.json`` (task, names, strides, imgsz, as in the other formats). The folder is assembled beside its
destination and renamed into place, so an interrupted export never leaves a half model. The runner used for
the 1e-4 check compiles the IR for the CPU with float32 inference precision (OpenVINO may otherwise pick
bfloat16 on CPUs that have it).
"""

from __future__ import annotations

import importlib.util
import json
import os
import tempfile
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import torch

from mirrordet.utils.errors import ConfigError, ExportError


def export_openvino(write_onnx: Callable[[Path], object], path: Path,
                    meta: Mapping[str, str]) -> Callable[[torch.Tensor], list[np.ndarray]]:
    """Write the IR folder ``path`` from the ONNX file that ``write_onnx(file)`` writes (the exporter's checked
    graph); returns a runner ``x -> [outputs]`` of the written model."""
    if importlib.util.find_spec("openvino") is None:
        raise ConfigError("format=openvino needs the openvino package: pip install openvino "
                          "(and onnx: pip install 'mirrordet[export]')")
    import openvino as ov

    path.parent.mkdir(parents=True, exist_ok=True)
    stem = path.name.removesuffix("_openvino_model")
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}.") as tmp:
        onnx_file = Path(tmp) / f"{stem}.onnx"
        write_onnx(onnx_file)
        try:
            model = ov.convert_model(str(onnx_file))
        except Exception as e:  # converter failures come in many types; all mean the same to the user
            raise ExportError(f"OpenVINO conversion of {meta.get('source')} failed: {type(e).__name__}: {e}") from None
        stage = Path(tmp) / "ir"
        stage.mkdir()
        ov.save_model(model, str(stage / f"{stem}.xml"), compress_to_fp16=False)
        (stage / "metadata.json").write_text(json.dumps(dict(meta), indent=2), encoding="utf-8")
        if path.exists():  # replace an earlier export: move it aside first, then swap
            old = Path(tmp) / "previous"
            os.replace(path, old)
        os.replace(stage, path)
    compiled = ov.Core().compile_model(str(path / f"{stem}.xml"), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})

    def run(x: torch.Tensor) -> list[np.ndarray]:
        result = compiled(x.float().cpu().numpy())
        return [np.asarray(result[out]) for out in compiled.outputs]

    return run

