"""mirrordet: YAML-defined detectors and classifiers with one trainer and one COCO-exact validator."""

from __future__ import annotations

from mirrordet.version import __version__

__all__ = ["Model", "__version__"]


def __getattr__(name: str):
    # Lazy so that `import mirrordet` (e.g. for __version__) does not import torch.
    if name == "Model":
        from mirrordet.model import Model

        return Model
    raise AttributeError(f"module 'mirrordet' has no attribute {name!r}")
