"""DoubleHeadRCNN: Faster R-CNN whose RoI stage classifies with fc layers and regresses with convolutions.

Double-Head (Wu et al., "Rethinking Classification and Localization for Object Detection", CVPR 2020) found
that a fully connected head suits classification (it is spatially sensitive: each cell of the 7x7 RoI has its
own weights) and a convolutional head suits box regression (its shared kernels model the object's extent).
So the RoI features feed two branches:

- fc-head (classification): flatten -> fc -> ReLU -> fc -> ReLU -> class logits (``nc + 1``, 0 = background);
- conv-head (regression): a residual block that widens the RoI features to ``conv_dim`` channels (projection
  shortcut), ``num_blocks`` bottleneck residual blocks (``conv_dim -> conv_dim / 4 -> conv_dim / 4 -> conv_dim``,
  BatchNorm + ReLU), 7x7 average pooling, and a linear layer to class-specific deltas (``(nc + 1) x 4``).

The paper uses ``conv_dim`` 1024 and 4 blocks; smaller values give a CPU-sized variant. The RPN, the sampling of
RoIs, the loss (:class:`mirrordet.losses.rcnn.RCNNLoss`) and decoding are those of :class:`RCNNHead`, so swapping
``RCNNHead`` for ``DoubleHeadRCNN`` in a YAML changes the RoI head alone. The paper's complementary losses
(Double-Head-Ext: each branch also trained on the other task, scores fused) are not implemented.
"""

from __future__ import annotations

import torch
from torch import nn

from mirrordet.nn.modules.head_rcnn import RCNNHead
from mirrordet.registry import MODULES
from mirrordet.utils.errors import ModelConfigError


class _Bottleneck(nn.Module):
    """1x1 -> 3x3 -> 1x1 residual block (BatchNorm, ReLU); a 1x1 projection shortcut when widths differ."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        mid = max(c_out // 4, 1)
        self.body = nn.Sequential(
            nn.Conv2d(c_in, mid, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU(inplace=True),
            nn.Conv2d(mid, mid, 3, padding=1, bias=False), nn.BatchNorm2d(mid), nn.ReLU(inplace=True),
            nn.Conv2d(mid, c_out, 1, bias=False), nn.BatchNorm2d(c_out))
        self.shortcut = (nn.Identity() if c_in == c_out else
                         nn.Sequential(nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out)))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


@MODULES.register()
class DoubleHeadRCNN(RCNNHead):
    """Faster R-CNN with a Double-Head RoI stage (see the module docstring).

    Args: those of :class:`RCNNHead` (``ia`` and ``rpn`` included), then ``conv_dim`` (width of the conv-head, 1024 in the paper) and
        ``num_blocks`` (bottleneck blocks after the widening one, 4 in the paper).

    Forward: as :class:`RCNNHead` (the same training outputs and eval layout).
    """

    yaml_example = (-1, ["nc", None, [0.5, 1.0, 2.0], None, 64, [64, 32], None, "standard", 64, 1])

    def __init__(self, nc: int, ch: tuple[int, ...], sizes: list[float] | None = None,
                 ratios: list[float] = (0.5, 1.0, 2.0), roi_levels: int | None = None, fc_dim: int = 1024,
                 post_nms_topk: list[int] = (2000, 1000), ia: list[float] | None = None, rpn: str = "standard",
                 conv_dim: int = 1024, num_blocks: int = 4) -> None:
        super().__init__(nc, ch, sizes, ratios, roi_levels, fc_dim, post_nms_topk, ia, rpn)
        self.conv_head = nn.Sequential(_Bottleneck(ch[0], conv_dim), *(_Bottleneck(conv_dim, conv_dim)
                                                                       for _ in range(num_blocks)),
                                       nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.bbox_pred = nn.Linear(conv_dim, (nc + 1) * 4)  # from the conv-head (class-specific)

    def roi_heads(self, pooled: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """RoI features [R, C, 7, 7] -> class logits [R, nc + 1] from the fc-head, deltas [R, nc + 1, 4] from the
        conv-head."""
        logits = self.cls_score(self.box_head(pooled))
        return logits, self.bbox_pred(self.conv_head(pooled)).view(-1, self.nc + 1, 4)

    arg_spec = (*RCNNHead.arg_spec, ("conv_dim", int), ("num_blocks", int))

    @classmethod
    def checked_args(cls, c_in: list, args: list) -> list:
        """As :meth:`RCNNHead.checked_args`, plus ``conv_dim`` (>= 4) and ``num_blocks`` (>= 0)."""
        full = super().checked_args(c_in, args)
        if len(args) > 8 and args[8] < 4:
            raise ModelConfigError(f"DoubleHeadRCNN conv_dim must be >= 4, got {args[8]}")
        if len(args) > 9 and args[9] < 0:
            raise ModelConfigError(f"DoubleHeadRCNN num_blocks must be >= 0, got {args[9]}")
        return full
