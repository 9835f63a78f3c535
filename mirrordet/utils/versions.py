"""Versions of Python and the packages a run depends on (recorded in args.yaml for repeatability)."""

from __future__ import annotations

import platform

from mirrordet.version import __version__


def package_versions() -> dict[str, str | None]:
    """``{"mirrordet", "python", "torch", "torchvision", "numpy", "opencv", "cuda"}`` -> version strings.

    A package that cannot be imported is recorded as ``None``; ``cuda`` is the CUDA version torch
    was built with (``None`` for CPU builds).
    """
    out: dict[str, str | None] = {"mirrordet": __version__, "python": platform.python_version()}
    for key, module in (("torch", "torch"), ("torchvision", "torchvision"), ("numpy", "numpy"), ("opencv", "cv2")):
        try:
            out[key] = str(__import__(module).__version__)
        except (ImportError, AttributeError):
            out[key] = None
    try:
        import torch

        out["cuda"] = torch.version.cuda
    except ImportError:
        out["cuda"] = None
    return out
