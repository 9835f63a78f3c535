"""Networks from checkpoints: the one place a :class:`ModelGraph` is rebuilt from a checkpoint."""

from __future__ import annotations

from pathlib import Path

import torch

from mirrordet.engine.checkpoint import is_plain_state_dict, load_state_dict_checked, parse_checkpoint
from mirrordet.engine.checkpoint_format import Checkpoint
from mirrordet.engine.import_torchvision import read_torchvision_state
from mirrordet.engine.import_ultralytics import is_ultralytics_checkpoint, read_ultralytics_checkpoint
from mirrordet.nn.graph import ModelGraph, build_model
from mirrordet.utils.errors import CheckpointError
from mirrordet.utils.log import LOGGER
from mirrordet.utils.safe_load import safe_torch_load


def read_checkpoint(path: str | Path) -> Checkpoint:
    """Load and validate ``path`` (``torch.load(weights_only=True)`` only, once). An Ultralytics checkpoint is
    converted in memory by :mod:`mirrordet.engine.import_ultralytics` (read as inert data, never run), a
    torchvision detector's state dict by :mod:`mirrordet.engine.import_torchvision`.

    Raises:
        CheckpointError: a file that is none of these, or that fails their checks.
    """
    try:
        payload = safe_torch_load(path)
    except CheckpointError:  # only then is the archive read once more, to see whether it is Ultralytics'
        if is_ultralytics_checkpoint(path):
            return read_ultralytics_checkpoint(path)
        raise
    if is_plain_state_dict(payload):
        converted = read_torchvision_state(payload, path)
        if converted is not None:
            return converted
    return parse_checkpoint(payload, path)


def rebuild_network(ckpt: Checkpoint, source: str | Path, weights: str = "model", nc: int | None = None,
                    names: dict[int, str] | None = None) -> ModelGraph:
    """The checkpoint's network with its ``weights`` state dict loaded.

    Args:
        ckpt: the checkpoint. source: the file it came from (named in errors and kept as the graph's source).
        weights: ``"model"`` (the weights to use, EMA when kept) or ``"train_weights"`` (to resume).
        nc: the class count to build for (default: the checkpoint's). names: class names (default: the
            checkpoint's).

    Raises:
        CheckpointError: the requested state dict is missing, or has missing keys / wrong shapes.
    """
    state = ckpt.model if weights == "model" else ckpt.train_weights
    if state is None:
        raise CheckpointError(f"{source} holds no {weights!r} state dict")
    cfg = ckpt.model_cfg
    net = ModelGraph(ckpt.model_yaml, nc=nc if nc is not None else cfg.get("nc"), scale=cfg.get("scale"),
                     source=str(source), names=names if names is not None else ckpt.names)
    label = str(source) if weights == "model" else f"{source} ({weights})"
    load_state_dict_checked(net, state, label)  # missing keys / wrong shapes -> CheckpointError
    return net


CHECKPOINT_SUFFIXES = (".pt", ".pth")  # .pth: torchvision's weight files


def is_checkpoint_path(model: str | Path) -> bool:
    """Whether ``model`` names a checkpoint file (``.pt``, or a torchvision ``.pth``) rather than a model YAML."""
    return Path(str(model)).suffix in CHECKPOINT_SUFFIXES


def load_weights(path: str | Path) -> tuple[ModelGraph, Checkpoint]:
    """Rebuild the network of a mirrordet checkpoint with its weights. Returns (network, checkpoint)."""
    ckpt = read_checkpoint(path)
    return rebuild_network(ckpt, path), ckpt


def transfer_weights(path: str | Path, nc: int, names: dict[int, str] | None = None) -> ModelGraph:
    """Fine-tuning: the checkpoint's architecture built for ``nc`` classes, with every tensor of the
    checkpoint whose name and shape fit (a new class count leaves the class-output layers fresh)."""
    src, _ = load_weights(path)
    net = ModelGraph(src.yaml_text, nc=nc, scale=src.scale, names=names)
    load_matching(net, src.state_dict(), path)
    return net


def load_matching(net: ModelGraph, state: dict[str, torch.Tensor] | str | Path, source: str | Path) -> int:
    """Copy into ``net`` every tensor of ``state`` (a state dict, or a checkpoint file to read) whose name
    and shape fit; logs and returns how many of ``net``'s tensors were filled. None fitting is an error."""
    if not isinstance(state, dict):
        state = read_checkpoint(state).model
    own = net.state_dict()
    matched = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not matched:
        raise CheckpointError(f"no tensor of {source} fits the model (names or shapes all differ); "
                              "is it a checkpoint of another architecture?")
    net.load_state_dict(matched, strict=False)
    LOGGER.info(f"Transferred {len(matched)}/{len(own)} tensors from {source}")
    return len(matched)


def missing_weights_message(model: str | Path) -> str:
    """What to tell a user whose ``model=X.pt`` does not exist (mirrordet never downloads weights)."""
    path = Path(str(model))
    return (f"{path} does not exist (looked for {path.resolve()}); mirrordet never downloads weights: put the file "
            f"there yourself (e.g. an Ultralytics release asset such as yolov8n.pt, or a best.pt you trained), "
            f"or build a fresh model from a YAML with model={path.stem}.yaml")


def open_network(model: str | Path, nc: int | None = None, scale: str | None = None
                 ) -> tuple[ModelGraph, Checkpoint | None]:
    """The network ``model`` names: a ``.pt`` / ``.pth`` checkpoint (mirrordet's, or another tool's converted in
    memory; with its weights; ``nc`` and
    ``scale`` are the checkpoint's), an exported file (``.onnx``, ``.torchscript``, ``*_openvino_model``: an
    :class:`~mirrordet.engine.exported_model.ExportedNetwork`, for predict and val) or a model YAML, a path or a
    bundled name (freshly initialized, built for ``nc`` classes at ``scale``). Returns (network, checkpoint or
    None)."""
    from mirrordet.engine.exported_model import ExportedNetwork, is_exported

    if is_exported(model):
        return ExportedNetwork(model), None  # type: ignore[return-value]
    if is_checkpoint_path(model):
        if not Path(str(model)).is_file():
            raise CheckpointError(missing_weights_message(model))
        return load_weights(model)
    return build_model(model, nc=nc, scale=scale), None
