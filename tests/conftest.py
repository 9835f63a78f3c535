"""Shared test settings and fixtures.

One intra-op thread: the suite runs many tiny forward passes, for which OpenMP spin-waiting
across threads costs far more than it gains on a 2-core machine (subprocess tests pin their
own thread count where results must match across runs).
"""

from __future__ import annotations

import sys
from typing import Callable, Sequence

import pytest
import torch

from mirrordet.cli import main

torch.set_num_threads(1)


@pytest.fixture
def one_line_error(capfd) -> Callable[..., str]:
    """``one_line_error(argv, contains=None)``: the CLI's error contract for a bad input.

    Runs ``mirrordet.cli.main(argv)`` in-process and asserts exit code 2, exactly one non-empty
    stderr line and no traceback (capfd sees the real file descriptors, so library and worker
    output counts too). ``contains`` is a case-insensitive substring the line must hold.
    ``after_log=True`` is for failures in the middle of a run (training that already printed its
    progress): then the error must be the last line and the only ``error:`` line.
    Returns the error line.
    """

    def check(argv: Sequence[str], contains: str | None = None, after_log: bool = False) -> str:
        capfd.readouterr()  # drop anything printed before
        code = main(list(argv))
        err = capfd.readouterr().err
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert code == 2, f"exit {code}, stderr:\n{err}"
        assert "Traceback" not in err, err
        if after_log:
            errors = [ln for ln in lines if ": error: " in ln]
            assert len(errors) == 1 and lines[-1] == errors[0], f"expected one final error line:\n{err}"
            lines = errors
        assert len(lines) == 1, f"expected one error line, got {len(lines)}:\n{err}"
        if contains is not None:
            assert contains.lower() in lines[0].lower(), lines[0]
        return lines[0]

    return check


@pytest.fixture
def ultralytics_like_file(monkeypatch) -> Callable[..., tuple[torch.nn.Module, dict]]:
    """Writes a checkpoint with the pickle structure of an Ultralytics ``.pt`` without Ultralytics.

    ``write(path, model="yolov8n.yaml", nc=4, ckpt_extra=None, model_extra=None, key="model", bn=None,
    kind=None)`` builds the
    network with mirrordet (whose zoo blocks have Ultralytics' layout), gives it random BatchNorm statistics,
    and pickles it as Ultralytics does: a ``DetectionModel`` / ``ClassificationModel`` object of module
    ``ultralytics.nn.tasks`` whose ``model`` holds the layers (each re-classed into an
    ``ultralytics.nn.modules.*`` class of the same name), with its ``yaml`` dict (plus ``scale``,
    ``yaml_file``, ``channels``), ``names``, ``stride`` and ``args``, in float16, inside the checkpoint dict
    (``date``, ``version``, ``train_args``, ``ema``, ...). Fake modules of those names exist in
    ``sys.modules`` only while the test runs. Returns (the float32 mirrordet network whose weights went
    into the file, rounded through float16; the checkpoint dict that was saved).
    """
    import copy
    import types

    from torch import nn

    from mirrordet.nn.graph import ModelGraph
    from mirrordet.nn.parser import load_model_yaml

    fakes: dict[type, type] = {}
    made: dict[str, types.ModuleType] = {}

    def module(name: str) -> types.ModuleType:
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            sub = ".".join(parts[:i])
            if sub not in made:
                made[sub] = types.ModuleType(sub)
                monkeypatch.setitem(sys.modules, sub, made[sub])
        return made[name]

    def fake_class(name: str, modname: str, base: type) -> type:
        cls = type(name, (base,), {"__module__": modname, "__qualname__": name})
        setattr(module(modname), name, cls)
        return cls

    def write(path, model: str = "yolov8n.yaml", nc: int = 4, scale: str | None = "n", ckpt_extra: dict | None = None,
              model_extra: dict | None = None, key: str = "model", imgsz: int = 64, bn: tuple | None = None,
              kind: str | None = None) -> tuple[nn.Module, dict]:
        d, text, _ = load_model_yaml(model)
        net = ModelGraph(text, nc=nc, scale=scale)
        if bn is not None:  # e.g. PyTorch's (1e-5, 0.1), which Ultralytics' classifiers keep
            for m in net.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.eps, m.momentum = bn
        gen = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for k, v in net.state_dict().items():
                if k.endswith("running_var"):
                    v.copy_(torch.rand(v.shape, generator=gen) + 0.5)
                elif k.endswith("running_mean"):
                    v.copy_(torch.rand(v.shape, generator=gen) * 0.2 - 0.1)
        net.half().float()  # the values the float16 file will hold
        layers = copy.deepcopy(net.layers).half()
        for m in layers.modules():
            cls = type(m)
            if cls.__module__.startswith("mirrordet"):
                if cls not in fakes:
                    fakes[cls] = fake_class(cls.__name__, "ultralytics.nn.modules." + cls.__module__.rsplit(".", 1)[1], cls)
                m.__class__ = fakes[cls]
        kind = kind or ("ClassificationModel" if net.task == "classify" else "DetectionModel")
        root = fake_class(kind, "ultralytics.nn.tasks", nn.Module)()
        root.model = layers
        root.yaml = {**d, "nc": nc, "scale": scale, "yaml_file": model, "channels": 3}
        root.names = {i: f"thing{i}" for i in range(nc)}
        root.stride = net.stride.clone()
        root.args = {"imgsz": imgsz, "task": net.task}
        for k, v in (model_extra or {}).items():
            setattr(root, k, v)
        ckpt = {"date": "2026-01-01T00:00:00", "version": "8.4.0", "epoch": -1, "best_fitness": None,
                "model": None, "ema": None, "optimizer": None, "train_args": {"imgsz": imgsz, "epochs": 3},
                **(ckpt_extra or {})}
        ckpt[key] = root
        torch.save(ckpt, path)
        return net.eval(), ckpt

    return write
