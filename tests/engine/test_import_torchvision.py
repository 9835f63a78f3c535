"""torchvision detector state dicts: imported into the matching YAML, they give torchvision's own detections."""

from __future__ import annotations

import pytest
import torch
from torchvision.models import detection

from mirrordet.cli import main
from mirrordet.engine.import_torchvision import FAMILIES, _names, detect_family
from mirrordet.engine.weights import load_weights, read_checkpoint
from mirrordet.ops.nms import NMSSettings
from mirrordet.utils.errors import CheckpointError

H, W = 512, 640  # sides that are multiples of 128 (the largest stride): no resize or padding in either tool


def sorted_detections(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """[n, 6] rows (score, label, x1, y1, x2, y2) in a fixed order: score, then label, then x1."""
    rows = torch.cat([scores[:, None], labels[:, None].float(), boxes], 1)
    order = sorted(range(len(rows)), key=lambda i: (-round(float(rows[i, 0]), 6), int(rows[i, 1]), float(rows[i, 2])))
    return rows[order]


def torchvision_file(name: str, directory) -> tuple[torch.nn.Module, object]:
    """A seeded torchvision detector ``name`` (5 object classes) with scores spread out, saved as a state dict."""
    torch.manual_seed(0)
    two_stage = "rcnn" in name  # torchvision counts the background among its classes there
    tv = getattr(detection, name)(weights=None, weights_backbone=None, num_classes=5 + two_stage, min_size=H,
                                  max_size=W)
    with torch.no_grad():
        if two_stage:  # sharper class scores than at init, so that some pass 0.05
            tv.roi_heads.box_predictor.cls_score.weight.mul_(5.0)
        else:  # the 0.01 prior would leave nothing above the threshold
            tv.head.classification_head.cls_logits.bias.fill_(-1.0)
        for m in tv.modules():
            if isinstance(m, torch.nn.BatchNorm2d):  # statistics that are not the identity
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    path = directory / f"{name}.pth"
    torch.save(tv.state_dict(), path)
    return tv.eval(), path


@pytest.fixture(scope="module")
def retinanet_file(tmp_path_factory):
    return torchvision_file("retinanet_resnet50_fpn", tmp_path_factory.mktemp("tv"))


# (builder, the NMS settings of torchvision's defaults: score_thresh, nms_thresh, detections_per_img)
FAMILY_CASES = [("retinanet_resnet50_fpn", NMSSettings(conf=0.05, iou=0.5, max_det=300)),
                ("retinanet_resnet50_fpn_v2", NMSSettings(conf=0.05, iou=0.5, max_det=300)),
                ("fcos_resnet50_fpn", NMSSettings(conf=0.2, iou=0.6, max_det=100)),
                ("fasterrcnn_resnet50_fpn", NMSSettings(conf=0.05, iou=0.5, max_det=100)),
                ("fasterrcnn_resnet50_fpn_v2", NMSSettings(conf=0.05, iou=0.5, max_det=100)),
                ("maskrcnn_resnet50_fpn", NMSSettings(conf=0.05, iou=0.5, max_det=100)),
                ("maskrcnn_resnet50_fpn_v2", NMSSettings(conf=0.05, iou=0.5, max_det=100))]


@pytest.mark.parametrize("name, nms", FAMILY_CASES)
def test_detections_equal_torchvision(name, nms, retinanet_file, tmp_path):
    tv, path = retinanet_file if name == "retinanet_resnet50_fpn" else torchvision_file(name, tmp_path)
    net, ckpt = load_weights(path)
    assert "conventions: torchvision" in ckpt.model_yaml and "normalize:" in ckpt.model_yaml
    assert net.resize == (800, 1333)  # predict resizes as torchvision's transform
    assert net.nc == 5 and ckpt.version == f"torchvision {name}"
    x = torch.rand(1, 3, H, W, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = tv([x[0]])[0]
        ours = net.eval().head.postprocess(net(x), nms)[0]
    assert len(ref["boxes"]) == len(ours) >= 20
    label_offset = 1 if "rcnn" in name else 0  # torchvision's label 0 is the background there
    a = sorted_detections(ref["boxes"], ref["scores"], ref["labels"] - label_offset)
    b = sorted_detections(ours.boxes, ours.scores, ours.labels)
    assert torch.equal(a[:, 1], b[:, 1])  # labels
    assert (a - b).abs().max() < 1e-4  # scores and boxes (pixels)


def test_convert_writes_a_checkpoint_that_loads_with_weights_only(retinanet_file, tmp_path):
    import shutil

    _, path = retinanet_file
    src = shutil.copy(path, tmp_path / "retinanet.pth")
    assert main(["convert", f"model={src}"]) == 0
    out = tmp_path / "retinanet-mirrordet.pt"
    plain = torch.load(out, weights_only=True)
    assert "conventions: torchvision" in plain["model_yaml"]
    a, b = load_weights(out)[0].eval(), load_weights(src)[0].eval()
    x = torch.rand(1, 3, 256, 256)
    with torch.no_grad():
        assert torch.equal(a(x), b(x))


def test_other_torchvision_families_are_refused_by_name(tmp_path):
    with pytest.raises(CheckpointError, match="keypointrcnn_resnet50_fpn"):  # shares the Faster R-CNN keys
        detect_family({"roi_heads.box_head.fc6.weight": torch.zeros(1),
                       "roi_heads.keypoint_predictor.kps_score_lowres.weight": torch.zeros(1)})
    with pytest.raises(CheckpointError, match="MobileNet"):
        detect_family({"roi_heads.box_head.fc6.weight": torch.zeros(1), "backbone.body.0.0.weight": torch.zeros(1)})
    path = tmp_path / "resnet.pth"  # a classifier's state dict is still refused as before
    torch.save({"conv1.weight": torch.zeros(1), "fc.weight": torch.zeros(1)}, path)
    with pytest.raises(CheckpointError, match="plain state dict"):
        read_checkpoint(path)


def test_a_key_without_a_place_is_named(retinanet_file, tmp_path):
    tv, _ = retinanet_file
    state = {**tv.state_dict(), "head.extra.weight": torch.zeros(1)}
    path = tmp_path / "extra.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="head.extra.weight"):
        read_checkpoint(path)


def test_coco_files_get_cocos_names():
    retina = next(f for f in FAMILIES if f.name == "retinanet_resnet50_fpn")
    names = _names(91, retina)
    assert names[1] == "person" and names[0] == "__background__" and len(names) == 91  # RetinaNet: 91 logits
    faster = next(f for f in FAMILIES if f.name == "fasterrcnn_resnet50_fpn")
    two_stage = _names(90, faster)  # Faster R-CNN: 91 classes with the background, 90 of mirrordet's
    assert faster.background == 1 and two_stage[0] == "person" and len(two_stage) == 90
    assert _names(5, retina) == {i: f"class{i}" for i in range(5)}


def test_predict_on_a_torchvision_file_uses_its_resize_rule(retinanet_file):
    """`predict` on the .pth itself: converted in memory, each image scaled as torchvision's transform (short side
    800), detections mapped back into the original image."""
    import numpy as np

    from mirrordet import Model

    _, path = retinanet_file
    img = (np.random.default_rng(0).random((240, 320, 3)) * 255).astype(np.uint8)  # BGR, 3:4
    (result,) = Model(path).predict(img, conf=0.3, max_det=50)
    boxes = result.boxes.xyxy
    assert 0 < len(boxes) <= 50 and result.orig_shape == (240, 320)
    assert float(boxes[:, [0, 2]].min()) >= 0 and float(boxes[:, [0, 2]].max()) <= 320
    assert float(boxes[:, [1, 3]].min()) >= 0 and float(boxes[:, [1, 3]].max()) <= 240
