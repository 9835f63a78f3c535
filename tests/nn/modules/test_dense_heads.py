"""Dense heads' tower depth (RetinaHead, FCOSHead): the repeats column scales with the depth multiple, num_convs
does not; and Efficient-RetinaNet's scales (l = the seed's torchvision layout, n = CPU-sized)."""

from __future__ import annotations

import pytest
import torch

from mirrordet.nn.graph import build_model
from mirrordet.utils.errors import ModelConfigError

HEAD_YAML = """nc: 3
scales:
  n: [0.5, 0.25, 1024]
  l: [1.0, 1.0, 1024]
backbone:
  - [-1, 1, Conv, [64, 3, 2]]
  - [-1, 1, Conv, [64, 3, 2]]
  - [-1, 1, Conv, [64, 3, 2]]
  - [-1, 1, Conv, [64, 3, 2]]
head:
  - [[2, 3], 1, FPN, [64]]
  - [4, REPEATS, HEAD, ARGS]
"""


def build(tmp_path, head: str, repeats: int, args: str, scale: str):
    path = tmp_path / f"dense-{head}.yaml"
    path.write_text(HEAD_YAML.replace("REPEATS", str(repeats)).replace("HEAD", head).replace("ARGS", args))
    return build_model(path, nc=3, scale=scale).layers[-1]


def towers(head) -> list[int]:
    """Conv count of each tower of a RetinaHead / FCOSHead."""
    names = ("cls_subnet", "box_subnet") if hasattr(head, "cls_subnet") else ("cls_branch", "box_branch")
    return [sum(isinstance(m, torch.nn.Conv2d) for m in getattr(head, n)) for n in names]


@pytest.mark.parametrize("head, args, num_convs_args", [("RetinaHead", "[nc]", "[nc, null, [1.0], [1.0], 3]"),
                                                        ("FCOSHead", "[nc]", "[nc, 3]")])
def test_tower_depth_follows_the_repeats_column(head, args, num_convs_args, tmp_path):
    assert towers(build(tmp_path, head, 4, args, "l")) == [4, 4]
    assert towers(build(tmp_path, head, 4, args, "n")) == [2, 2]  # 4 x depth 0.5
    assert towers(build(tmp_path, head, 1, args, "n")) == [4, 4]  # repeats 1: num_convs' default, unscaled
    assert towers(build(tmp_path, head, 1, num_convs_args, "n")) == [3, 3]
    assert towers(build(tmp_path, head, 3, args, "n")) == [2, 2]  # round(1.5) like a block's repeats
    with pytest.raises(ModelConfigError, match="tower depth is set twice"):
        build(tmp_path, head, 4, num_convs_args, "l")


def test_num_convs_below_one_is_refused(tmp_path):
    with pytest.raises(ModelConfigError, match="num_convs >= 1"):
        build(tmp_path, "FCOSHead", 1, "[nc, 0]", "l")


def test_efficient_retinanet_scale_l_is_the_seed_layout():
    """Scale l counts exactly the parameters of the seed's torchvision pieces: efficientnet_b0 features, an FPN
    over features 3..8 with P6/P7 at 256 channels, and RetinaNetHead (9 anchors)."""
    import torchvision
    from torchvision.models.detection.retinanet import RetinaNetHead
    from torchvision.ops import FeaturePyramidNetwork
    from torchvision.ops.feature_pyramid_network import LastLevelP6P7

    parts = [torchvision.models.efficientnet_b0().features,
             FeaturePyramidNetwork([40, 80, 112, 192, 320, 1280], 256, LastLevelP6P7(256, 256)),
             RetinaNetHead(256, 9, 20)]
    seed = sum(p.numel() for part in parts for p in part.parameters())
    large = build_model("retinanet-efficientnet-b0.yaml", nc=20, scale="l")
    assert sum(p.numel() for p in large.parameters()) == seed
    assert towers(large.layers[-1]) == [4, 4] and large.layers[-1].nl == 8


def test_efficient_retinanet_default_is_the_cpu_scale():
    from mirrordet.nn.info import summarize

    small = build_model("retinanet-efficientnet-b0.yaml", nc=4)
    large = build_model("retinanet-efficientnet-b0.yaml", nc=4, scale="l")
    assert towers(small.layers[-1]) == [2, 2] and small.layers[-1].cls_logits.in_channels == 64
    assert summarize(small, 256).gflops < summarize(large, 256).gflops / 5
