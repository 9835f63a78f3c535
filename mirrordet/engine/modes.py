"""The mode layer: each mode's settings resolved once, then its components called with explicit arguments.

``mirrordet val`` and ``mirrordet predict`` (and ``Model.val`` / ``Model.predict``) run here;
``train`` is the :class:`~mirrordet.engine.trainer.Trainer` and ``export``
:func:`~mirrordet.engine.exporter.export_model`, which take their settings from
:func:`~mirrordet.engine.setup.mode_settings` too. Components receive a :class:`~mirrordet.nn.graph.ModelGraph` plus
explicit metadata (the checkpoint's training settings), never the ``Model`` facade.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Mapping

from mirrordet.cfg import get_cfg
from mirrordet.engine.checkpoint_format import Checkpoint
from mirrordet.engine.exported_model import ExportedNetwork
from mirrordet.engine.inference import InferenceRunner, prepare_model, weights_stamp
from mirrordet.engine.predictor import Predictor
from mirrordet.engine.results import Result
from mirrordet.engine.run_dir import run_dir
from mirrordet.engine.setup import MODEL_KEYS, check_classes, check_imgsz, mode_settings, resolve_settings
from mirrordet.engine.sources import resolve_source
from mirrordet.engine.tasks import task_for
from mirrordet.engine.weights import open_network
from mirrordet.nn.graph import ModelGraph
from mirrordet.utils.errors import ConfigError
from mirrordet.utils.log import LOGGER
from mirrordet.utils.torch_utils import select_device


def load_network(overrides: Mapping[str, Any]) -> tuple[ModelGraph, Checkpoint | None, str]:
    """(network, its checkpoint or None, the ``model`` setting) of the network the settings name
    (``model``, with ``nc``/``scale`` for a YAML).

    Only :data:`~mirrordet.engine.setup.MODEL_KEYS` are resolved here: the rest of a mode's
    settings may depend on the checkpoint (its training imgsz) and are resolved once, after.
    """
    ident = get_cfg({k: overrides[k] for k in MODEL_KEYS if k in overrides})
    name = str(ident["model"])
    return (*open_network(name, nc=ident["nc"], scale=ident["scale"]), name)


def open_for_mode(overrides: Mapping[str, Any], mode: str) -> tuple[ModelGraph, Checkpoint | None, str]:
    """:func:`load_network` for the CLI modes: every setting type-checked first (a bad one is reported before
    any file is read), and a loud warning when ``mode`` would run a freshly built, untrained network."""
    get_cfg(overrides)
    if mode == "val" and not overrides.get("model"):
        raise ConfigError("mirrordet val needs the trained weights to validate: pass model=path/to/best.pt "
                          "(e.g. model=runs/detect/train/train/weights/best.pt)")
    net, ckpt, name = load_network(overrides)
    if isinstance(net, ExportedNetwork):
        if mode not in ("val", "predict"):
            raise ConfigError(f"model={name} is an exported model: {mode} needs the .pt checkpoint it was exported "
                              "from (exported files run predict and val)")
    elif ckpt is None:
        LOGGER.warning(f"WARNING: model={name} is a model YAML, so {mode} runs a randomly initialized network "
                       "(mirrordet never downloads weights): its outputs are noise. Pass a trained checkpoint "
                       "(model=.../best.pt) or train one first")
    return net, ckpt, name


def trained_with(net: ModelGraph | ExportedNetwork, ckpt: Checkpoint | None) -> dict[str, Any] | None:
    """The settings ``net`` was trained with, as far as known: its checkpoint's, or what an exported file
    stores (imgsz, data); None for a freshly built network."""
    if isinstance(net, ExportedNetwork):
        return dict(net.train_args)
    return ckpt.train_args if ckpt is not None else None


def val_mode(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """`mirrordet val`: the named network validated on ``data``'s ``split``; returns the metrics."""
    net, ckpt, _ = open_for_mode(overrides, "val")
    return validate_model(net, overrides, trained_with(net, ckpt))


def predict_mode(overrides: Mapping[str, Any]) -> None:
    """`mirrordet predict`: the named network over ``source``, results streamed to the run folder."""
    net, ckpt, _ = open_for_mode(overrides, "predict")
    for _ in predict_model(net, overrides=overrides, stream=True, cli=True, train_args=trained_with(net, ckpt)):
        pass


def export_mode(overrides: Mapping[str, Any]) -> Path:
    """`mirrordet export`: the named network exported and checked; returns the file's path."""
    from mirrordet.engine.exporter import export_model

    net, ckpt, name = open_for_mode(overrides, "export")
    return export_model(net, overrides, train_args=ckpt.train_args if ckpt is not None else None, source=name).path


def convert_mode(overrides: Mapping[str, Any]) -> Path:
    """`mirrordet convert`: the checkpoint ``model`` (an Ultralytics file or a torchvision detector's state dict is
    converted in memory) written as a mirrordet checkpoint ``<stem>-mirrordet.pt`` beside it (``exist_ok=True``
    overwrites); returns its path."""
    from mirrordet.engine.checkpoint import save_checkpoint
    from mirrordet.engine.weights import read_checkpoint

    cfg = get_cfg({k: overrides[k] for k in (*MODEL_KEYS, "exist_ok") if k in overrides})
    src = Path(str(cfg["model"]))
    if src.suffix not in (".pt", ".pth"):
        raise ConfigError(f"convert reads a checkpoint (model=file.pt or .pth), got model={src}")
    out = src.with_name(f"{src.stem}-mirrordet.pt")
    if out.exists() and not cfg["exist_ok"]:
        raise ConfigError(f"{out} exists; pass exist_ok=True to overwrite it")
    ckpt = read_checkpoint(src)
    save_checkpoint(out, ckpt.to_dict())
    LOGGER.info(f"Converted {src} -> {out} ({ckpt.model_cfg.get('nc')} classes); "
                f"use it as model={out} or weights={out}")
    return out


def validate_model(net: ModelGraph, overrides: Mapping[str, Any],
                   train_args: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """`mirrordet val`: validate the network ``net`` on ``data``'s ``split`` (``net`` is not changed).

    Without ``data``, a trained network is validated on the dataset it was trained on (``train_args``, its
    checkpoint's settings). Writes runs/<task>/val/<name>/ (metrics.json, predictions.json, plots) and returns
    the metrics.
    """
    trained_on = (train_args or {}).get("data")
    if overrides.get("data") is None and isinstance(trained_on, str) and trained_on:
        LOGGER.info(f"data= not given: validating on {trained_on}, the dataset the model was trained on")
        overrides = {**overrides, "data": trained_on}
    exported = isinstance(net, ExportedNetwork)
    if exported:
        overrides = exported_settings(net, overrides, "val")
    cfg, data = resolve_settings(overrides)
    task = task_for(net, data)
    check_classes(net.nc, data)
    net.names = dict(data["names"])
    device = select_device(cfg["device"])
    imgsz = check_imgsz(cfg["imgsz"], net.max_stride)
    resize = None if exported else getattr(net, "resize", None)
    extra = {}
    if resize is not None:  # the model's own input rule (imported torchvision weights): per-image sizes, rect batches
        LOGGER.info(f"the model carries its resize rule: every image at short side {resize[0]}, long side at most "
                    f"{resize[1]}, in rectangular batches (imgsz={cfg['imgsz']} is not used)")
        extra["resize"] = resize
    dataset, loader = task.build_split(data, cfg["split"], cfg, imgsz, augment=False, batch=cfg["batch"],
                                       stride=net.max_stride, **extra)
    save_dir = run_dir(net.task, "val", cfg["project"], cfg["name"], cfg["exist_ok"])
    validator = task.validator(dataset, loader, cfg, save_dir, conf=0.001 if cfg["conf"] is None else cfg["conf"])
    half = cfg["half"] and device.type == "cuda"
    if not exported:
        net = prepare_model(net, device, half, fast=True)  # a fused, channels-last copy: the user's model is untouched
    metrics = validator(net, device, half=half, verbose=cfg["verbose"], plots=cfg["plots"], save_json=cfg["save_json"],
                        channels_last=True)
    LOGGER.info(f"Results saved to {save_dir}")
    return metrics


def predict_model(net: ModelGraph, source: Any = None, overrides: Mapping[str, Any] | None = None,
                  stream: bool = False, cli: bool = False, train_args: Mapping[str, Any] | None = None,
                  cache: dict[str, Any] | None = None) -> list[Result] | Iterator[Result]:
    """`mirrordet predict` and ``Model.predict``: settings, run folder, then :class:`Predictor`.

    Args:
        net: the network (not changed: prediction runs a fused copy).
        source: what to predict on (overrides the ``source`` setting); numpy arrays allowed.
        overrides: settings on top of the defaults. ``imgsz`` defaults to the checkpoint's
            training size when not given. ``save`` (annotated outputs) defaults to True from the
            CLI and False from Python; from Python, ``save_json`` is off unless asked for.
        stream: return a generator instead of a list.
        cli: called from the command line.
        train_args: the settings the network was trained with (its checkpoint's), if any.
        cache: a dict the caller keeps between calls: the fused inference copy is reused from it
            while the network's weights are unchanged.

    Raises:
        ConfigError: no source, or a bad setting. DatasetError: an unusable source.
    """
    overrides = dict(overrides or {})
    if source is None:
        source = overrides.get("source")
    overrides.pop("source", None)
    if source is None or (isinstance(source, str) and not source.strip()):
        raise ConfigError("predict needs a source: source=image.jpg, a folder, a glob, a video or a .txt list")
    if isinstance(net, ExportedNetwork):
        overrides = exported_settings(net, overrides, "predict")
    cfg = mode_settings("predict", overrides, train_args, cli=cli)
    save = cli if cfg.get("save") is None else bool(cfg["save"])
    task = net.task
    items = resolve_source(source)  # a bad source fails here, before any folder is created
    save_dir = None
    if save or cfg["save_txt"] or cfg["save_json"]:
        def save_dir() -> Path:
            return run_dir(task, "predict", cfg["project"], cfg["name"], cfg["exist_ok"])
    runner = None if isinstance(net, ExportedNetwork) else _cached_runner(net, cfg, {} if cache is None else cache)
    predictor = Predictor(net, cfg, save_dir, save, runner=runner)
    return predictor.run(items, source, stream=stream)


def exported_settings(net: ExportedNetwork, overrides: Mapping[str, Any], mode: str) -> dict[str, Any]:
    """The settings of ``mode`` on an exported file: a fixed-shape file runs at its export size only (a different
    ``imgsz`` is replaced, with a warning; ``rect`` batches are refused)."""
    out = dict(overrides)
    if net.dynamic:
        return out
    if out.get("imgsz") not in (None, net.imgsz):
        LOGGER.warning(f"WARNING: {net.path.name} takes {net.imgsz}x{net.imgsz} inputs only (exported with "
                       f"dynamic=False); running {mode} at imgsz={net.imgsz} instead of {out['imgsz']}")
    out["imgsz"] = net.imgsz
    if mode == "val" and out.get("rect"):
        raise ConfigError(f"rect=True batches have varying shapes; {net.path.name} takes one shape (export with "
                          "dynamic=True to validate with rect=True)")
    return out


def _cached_runner(net: ModelGraph, cfg: Mapping[str, Any], cache: dict[str, Any]) -> InferenceRunner:
    """The inference runner of ``net``, reused across calls while its weights are unchanged.

    Kept in ``cache["runner"]`` as (key, runner, tensors): ``tensors`` lists the weights once, so that
    checking for changed weights costs microseconds per call.
    """
    device = select_device(cfg.get("device"))
    half = bool(cfg.get("half")) and device.type == "cuda"
    cached = cache.get("runner")
    tensors = cached[2] if cached is not None and cached[0][0][0] == id(net) else [*net.parameters(), *net.buffers()]
    key = (weights_stamp(net, tensors), str(device), half)
    if cached is not None and cached[0] == key:
        return cached[1]
    runner = InferenceRunner(prepare_model(net, device, half, fast=True))
    cache["runner"] = (key, runner, tensors)
    return runner
