"""Classify: image classification head (1x1 Conv -> global average pool -> Linear)."""

from __future__ import annotations

import torch
from torch import nn

from mirrordet.nn.head import Head
from mirrordet.nn.modules.base import BuildContext, check_args, single_input
from mirrordet.nn.modules.conv import Conv
from mirrordet.registry import MODULES
from mirrordet.utils.errors import ModelConfigError


@MODULES.register()
class Classify(Head):
    """[B, c1, H, W] -> logits [B, c2] in training, softmax probabilities [B, c2] in eval.

    Args:
        c1: input channels. c2: classes. k, s, p, g: the 1x1 conv's kernel/stride/padding/groups.
        dropout: dropout before the linear layer.
    """

    yaml_example = (-1, ["nc"])  # (from, args) of a row the registry-wide tests build

    task = "classify"
    loss = "cross_entropy"
    train_outputs = ("logits",)
    hidden = 1280

    def __init__(self, c1: int, c2: int, k: int = 1, s: int = 1, p: int | None = None, g: int = 1,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.conv = Conv(c1, self.hidden, k, s, p, g)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(p=dropout, inplace=True)
        self.linear = nn.Linear(self.hidden, c2)

    def forward(self, x: torch.Tensor | list[torch.Tensor]) -> torch.Tensor:
        if isinstance(x, list):
            x = torch.cat(x, 1)
        x = self.linear(self.drop(self.pool(self.conv(x)).flatten(1)))
        return x if self.training else x.softmax(1)

    @classmethod
    def from_yaml(cls, c_in: list[int], args: list, n: int, ctx: BuildContext):
        """Args ``[nc, k=1, s=1, p=None, g=1, dropout=0.0]``."""
        check_args(cls.__name__, args, (("nc", int), ("k", int), ("s", int), ("p", (int, type(None))),
                                        ("g", int), ("dropout", float)), required=1)
        if args[0] < 1:
            raise ModelConfigError(f"Classify needs nc >= 1, got {args[0]}")
        full = [single_input(cls.__name__, c_in), *args]
        return cls(*full), args[0], full
