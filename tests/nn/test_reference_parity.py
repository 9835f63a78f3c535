"""The r50-FPN reference YAMLs have torchvision's detection layouts: equal parameter counts (their state dicts
import parameter for parameter: tests/engine/test_import_torchvision.py)."""

import pytest
from torchvision.models import detection

from mirrordet.nn import build_model

count = lambda m: sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("name, ctor, background", [
    ("retinanet-r50-fpn.yaml", detection.retinanet_resnet50_fpn, 0),
    ("retinanet-r50-fpn-v2.yaml", detection.retinanet_resnet50_fpn_v2, 0),
    ("fcos-r50-fpn.yaml", detection.fcos_resnet50_fpn, 0),
    ("faster-rcnn-r50-fpn.yaml", detection.fasterrcnn_resnet50_fpn, 1),  # torchvision counts background
    ("faster-rcnn-r50-fpn-v2.yaml", detection.fasterrcnn_resnet50_fpn_v2, 1),
    ("maskrcnn-r50-fpn.yaml", detection.maskrcnn_resnet50_fpn, 1),
    ("maskrcnn-r50-fpn-v2.yaml", detection.maskrcnn_resnet50_fpn_v2, 1),
])
def test_r50_fpn_parameter_parity(name, ctor, background, nc=80):
    ours = count(build_model(name, nc=nc))
    ref = count(ctor(weights=None, weights_backbone=None, num_classes=nc + background))
    assert ours == ref
