"""TorchVision: a torchvision classification trunk as a YAML backbone returning chosen stage outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
import torchvision
from torch import nn

from mirrordet.nn.modules.base import BuildContext, check_args, flat_channels
from mirrordet.registry import MODULES
from mirrordet.utils.errors import CheckpointError, ModelConfigError
from mirrordet.utils.safe_load import safe_torch_load


def _resnet_stages(m: nn.Module) -> list[nn.Module]:
    """ResNet: [stem (conv1, bn1, relu, maxpool) /4, layer1 /4, layer2 /8, layer3 /16, layer4 /32]."""
    return [nn.Sequential(m.conv1, m.bn1, m.relu, m.maxpool), m.layer1, m.layer2, m.layer3, m.layer4]


def _regnet_stages(m: nn.Module) -> list[nn.Module]:
    """RegNet: [stem /2, block1 /4, block2 /8, block3 /16, block4 /32]."""
    t = m.trunk_output
    return [m.stem, t.block1, t.block2, t.block3, t.block4]


def _efficientnet_stages(m: nn.Module) -> list[nn.Module]:
    """EfficientNet: ``features[0..8]`` (strides 2, 2, 4, 8, 16, 16, 32, 32, 32)."""
    return list(m.features)


# name -> (constructor, stage splitter). The YAML string is only ever a key of this dict.
BACKBONES: dict[str, tuple[Callable[..., nn.Module], Callable[[nn.Module], list[nn.Module]]]] = {
    "resnet18": (torchvision.models.resnet18, _resnet_stages),
    "resnet34": (torchvision.models.resnet34, _resnet_stages),
    "resnet50": (torchvision.models.resnet50, _resnet_stages),
    "resnet101": (torchvision.models.resnet101, _resnet_stages),
    "regnet_x_400mf": (torchvision.models.regnet_x_400mf, _regnet_stages),
    **{f"efficientnet_b{i}": (getattr(torchvision.models, f"efficientnet_b{i}"), _efficientnet_stages)
       for i in range(8)},  # fixed names built here, never from YAML
}


@MODULES.register()
class TorchVision(nn.Module):
    """A torchvision backbone built with ``weights=None`` (never downloads), cut into stages.

    Args:
        name: a key of :data:`BACKBONES` (e.g. ``resnet50``, ``regnet_x_400mf``, ``efficientnet_b0``).
        out_indices: stages whose outputs are returned, ascending (ResNet/RegNet: 2, 3, 4 are C3, C4,
            C5; EfficientNet: ``features`` indices 0..8). Stages after the last one are dropped.
        weights: optional path of a local state dict (``torch.load(weights_only=True)``) of the full
            torchvision model; None = random initialization.
        freeze: number of leading stages whose parameters are frozen (``requires_grad=False``).

    Forward:
        [B, 3, H, W] image -> list of [B, C_i, H / s_i, W / s_i] stage outputs, in ``out_indices`` order.
    """

    yaml_example = (-4, ["resnet18", [2, 3, 4]])  # -4 from layer 3 = the input image

    def __init__(self, name: str, out_indices: list[int], weights: str | None = None, freeze: int = 0) -> None:
        super().__init__()
        ctor, split = BACKBONES[name]
        model = ctor(weights=None)
        if weights is not None:
            state = safe_torch_load(Path(weights))  # bounded, weights-only; CheckpointError otherwise
            if not isinstance(state, dict):
                raise CheckpointError(f"{weights}: expected a state dict of {name}, found {type(state).__name__}")
            try:
                model.load_state_dict(state)
            except (RuntimeError, TypeError, ValueError) as e:  # missing keys, wrong shapes
                lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
                detail = "; ".join(lines[1:4] if len(lines) > 1 else lines)[:300]
                raise CheckpointError(f"{weights}: not a state dict of torchvision {name} ({detail})") from None
        stages = split(model)
        self.out_indices = list(out_indices)
        self.stages = nn.ModuleList(stages[: max(self.out_indices) + 1])
        for stage in list(self.stages)[:freeze]:
            stage.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i in self.out_indices:
                outs.append(x)
        return outs

    @torch.no_grad()
    def out_channels(self) -> list[int]:
        """Channels of the returned stages, from one forward of a 64 x 64 zero image."""
        was = self.training
        self.eval()
        chans = [int(t.shape[1]) for t in self.forward(torch.zeros(1, 3, 64, 64))]
        self.train(was)
        return chans

    @classmethod
    def from_yaml(cls, c_in: list, args: list, n: int, ctx: BuildContext):
        """Args ``[name, out_indices, weights=None, freeze=0]``; ``from`` must be the image (3 channels)."""
        check_args(cls.__name__, args, (("name", str), ("out_indices", list), ("weights", (str, type(None))),
                                        ("freeze", int)), required=2)
        name, idx = args[0], args[1]
        if name not in BACKBONES:
            raise ModelConfigError(f"TorchVision backbone {name!r} is not supported; choose one of "
                                   f"{', '.join(sorted(BACKBONES))}")
        if flat_channels(c_in) != [3]:
            raise ModelConfigError(f"TorchVision needs the 3-channel image as input, got channels {c_in}")
        if not idx or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in idx) \
                or sorted(set(idx)) != idx:
            raise ModelConfigError(f"TorchVision out_indices must be ascending, distinct ints >= 0, got {idx!r}")
        if len(args) > 2 and args[2] is not None and not Path(args[2]).is_file():
            raise ModelConfigError(f"TorchVision weights file {args[2]!r} not found (only local files are read)")
        module = cls(*args)
        if len(module.stages) != max(idx) + 1:
            raise ModelConfigError(f"TorchVision {name}: out_indices {idx} exceed its stages")
        return module, module.out_channels(), list(args)
