"""Model building: YAML parser, model graph, modules."""

from mirrordet.nn.graph import ModelGraph, build_model

__all__ = ["ModelGraph", "build_model"]
