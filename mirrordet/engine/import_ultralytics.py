"""Ultralytics checkpoints (``yolov8n.pt``, ``yolo11n-cls.pt``, a ``best.pt`` it trained) read without Ultralytics.

Such a file pickles the whole model object. It is read with :func:`mirrordet.utils.inert_pickle.load_inert`,
which runs nothing from the file: every object stays an inert record, and the parameters and buffers are read
from the records by module path. From the file mirrordet takes:

- the weights of ``ckpt["ema"]`` when present, else ``ckpt["model"]`` (the ones Ultralytics itself uses),
  with the layer prefix ``model.<i>`` renamed to mirrordet's ``layers.<i>``;
- the model's YAML dict (``model.yaml``: the architecture, its ``nc`` and ``scale``), rebuilt by mirrordet's
  own parser (the zoo's blocks have Ultralytics' layout parameter for parameter);
- the class names (``model.names``) and the training image size (``train_args["imgsz"]``).

The result is an ordinary :class:`~mirrordet.engine.checkpoint_format.Checkpoint`; ``mirrordet convert``
writes it to disk. Detection and classification models are supported; other tasks are refused by name.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import torch
import yaml

from mirrordet.engine.checkpoint import cpu_state, load_state_dict_checked
from mirrordet.engine.checkpoint_format import Checkpoint
from mirrordet.nn.graph import ModelGraph
from mirrordet.utils.errors import CheckpointError, MirrordetError
from mirrordet.utils.inert_pickle import Record, iter_modules, load_inert, walk_module
from mirrordet.utils.log import LOGGER
from mirrordet.utils.safe_load import MAX_PICKLE_BYTES, pickle_globals

SUPPORTED_MODELS = ("ultralytics.nn.tasks.DetectionModel", "ultralytics.nn.tasks.ClassificationModel")
# YAML-dict entries Ultralytics adds for its own bookkeeping; `scale` becomes the build's scale.
_BOOKKEEPING_KEYS = ("yaml_file", "channels", "ch", "scale")


def is_ultralytics_checkpoint(path: str | Path) -> bool:
    """Whether ``path`` is a torch zip archive whose pickle names an ``ultralytics`` class (read, never run)."""
    try:
        with zipfile.ZipFile(path) as zf:
            pkl = next((i for i in zf.infolist() if i.filename.endswith("data.pkl")), None)
            if pkl is None or pkl.file_size > MAX_PICKLE_BYTES:
                return False
            data = zf.read(pkl)
    except Exception:  # noqa: BLE001 - not a readable archive: the ordinary loader says why
        return False
    return any(g.startswith("ultralytics.") for g in pickle_globals(data))


def _model_record(ckpt: Any, path: Path) -> Record:
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{path}: an Ultralytics checkpoint holds a dict, found {type(ckpt).__name__}")
    rec = ckpt.get("ema") if isinstance(ckpt.get("ema"), Record) else ckpt.get("model")
    if not isinstance(rec, Record):
        raise CheckpointError(f"{path}: no model object under 'ema' or 'model' (keys: {sorted(map(str, ckpt))[:10]})")
    if rec.cls not in SUPPORTED_MODELS:
        raise CheckpointError(f"{path}: {rec.cls} models cannot be imported yet (supported: "
                              f"{', '.join(c.rsplit('.', 1)[1] for c in SUPPORTED_MODELS)})")
    return rec


def _model_yaml(rec: Record, path: Path) -> tuple[str, int, str | None]:
    """(YAML text for mirrordet's parser, nc, scale) from the model's stored YAML dict."""
    d = rec.attr("yaml")
    if not isinstance(d, dict) or "backbone" not in d or "head" not in d:
        raise CheckpointError(f"{path}: the model object holds no architecture dict (model.yaml)")
    d = dict(d)
    if "batchnorm" not in d:
        d["batchnorm"] = _batchnorm(rec, path) or None
        if d["batchnorm"] is None or d["batchnorm"] == {"eps": 1e-3, "momentum": 0.03}:  # mirrordet's default
            d.pop("batchnorm")
    scale = d.get("scale")
    for key in _BOOKKEEPING_KEYS:
        d.pop(key, None)
    scales = d.get("scales")
    if isinstance(scales, dict) and scales and scale not in scales:
        scale = next(iter(scales))  # Ultralytics builds the first scale when none is named
    nc = d.get("nc", rec.attr("nc"))
    if type(nc) is not int or nc < 1:
        raise CheckpointError(f"{path}: the model's class count {nc!r} is not a positive int")
    try:
        text = yaml.safe_dump(d, sort_keys=False, default_flow_style=None)
    except yaml.YAMLError as e:
        raise CheckpointError(f"{path}: the model's architecture dict holds non-YAML values ({e})") from None
    return text, nc, scale if isinstance(scale, str) else None


def _batchnorm(rec: Record, path: Path) -> dict[str, float]:
    """The file's BatchNorm constants as the YAML key ``batchnorm`` ({} when it has no BatchNorm layer).

    Ultralytics' detectors use eps 1e-3, momentum 0.03 (mirrordet's default); its classifiers keep
    PyTorch's eps 1e-5, momentum 0.1. One pair must hold for the whole model.
    """
    pairs = {(r.attr("eps"), r.attr("momentum")) for _, r in iter_modules(rec) if r.cls.endswith("BatchNorm2d")}
    if not pairs:
        return {}
    if len(pairs) > 1 or not all(isinstance(v, float) for v in next(iter(pairs))):
        raise CheckpointError(f"{path}: its BatchNorm layers use differing constants {sorted(map(str, pairs))[:4]}, "
                              "which one model YAML cannot state")
    eps, momentum = next(iter(pairs))
    return {"eps": eps, "momentum": momentum}


def _names(rec: Record, nc: int) -> dict[int, str]:
    names = rec.attr("names")
    if isinstance(names, (list, tuple)):
        names = dict(enumerate(names))
    if isinstance(names, dict) and len(names) == nc and all(type(k) is int and isinstance(v, str)
                                                            for k, v in names.items()):
        return {int(k): v for k, v in sorted(names.items())}
    return {i: f"class{i}" for i in range(nc)}


def _weights(rec: Record, net: ModelGraph, path: Path) -> dict[str, torch.Tensor]:
    """The record's tensors under mirrordet's names, float32; mirrordet-only ``stride`` buffers from ``net``."""
    state = {}
    for name, tensor in walk_module(rec):
        if name.startswith("model."):
            name = "layers." + name[len("model."):]
        state[name] = tensor.float() if tensor.is_floating_point() else tensor
    for name, tensor in net.state_dict().items():
        if name.endswith(".stride") and name not in state:
            state[name] = tensor
    load_state_dict_checked(net, state, path)
    return cpu_state(net.state_dict())


def read_ultralytics_checkpoint(path: str | Path) -> Checkpoint:
    """Convert the Ultralytics checkpoint ``path`` into a mirrordet :class:`Checkpoint` in memory.

    Raises:
        CheckpointError: a refused or damaged file, an unsupported model class, or weights that do not fit
            the architecture mirrordet builds from the file's YAML (the message names the file).
    """
    path = Path(path)
    ckpt = load_inert(path)
    rec = _model_record(ckpt, path)
    text, nc, scale = _model_yaml(rec, path)
    names = _names(rec, nc)
    try:
        net = ModelGraph(text, nc=nc, scale=scale, source=f"{path} (model.yaml)", names=names)
    except MirrordetError as e:
        raise CheckpointError(f"{path}: mirrordet cannot build the file's architecture: {e}") from None
    state = _weights(rec, net, path)
    args = ckpt.get("train_args") if isinstance(ckpt.get("train_args"), dict) else {}
    imgsz = args.get("imgsz")
    train_args = {"imgsz": imgsz} if type(imgsz) is int and imgsz > 0 else {}
    version = ckpt.get("version") if isinstance(ckpt.get("version"), str) else "unknown"
    LOGGER.info(f"{path}: Ultralytics {version} checkpoint ({rec.cls.rsplit('.', 1)[1]}, {nc} classes"
                f"{f', scale {scale}' if scale else ''}) converted in memory; nothing from the file was run")
    return Checkpoint(model_yaml=text, model=state, model_cfg={"scale": scale, "nc": nc}, names=names,
                      train_args=train_args, date=str(ckpt.get("date") or ""), version=f"ultralytics {version}")
