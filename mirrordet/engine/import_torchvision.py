"""torchvision detector state dicts (``torch.save(model.state_dict())`` of a ``torchvision.models.detection``
model, or a downloaded ``*_coco-*.pth``) read into the matching mirrordet YAML.

The file is plain tensors (``torch.load(weights_only=True)``). Its family is recognized by its keys, every
tensor is renamed to the layer of mirrordet's reference YAML that has torchvision's layout parameter for
parameter, and the converted model's YAML gains two top-level keys, so that it reproduces torchvision's
detections with those weights:

- ``normalize``: ImageNet's mean and std, which torchvision's ``GeneralizedRCNNTransform`` applies to the
  [0, 1] input;
- ``conventions: torchvision``: anchors placed and detections decoded as torchvision's heads do
  (:func:`mirrordet.ops.anchor_boxes.torchvision_grid_anchors`, :func:`mirrordet.ops.nms.per_level_nms`).

- ``resize: {min_size: 800, max_size: 1333}``: predict scales each image as torchvision's transform does (short
  side 800, long side at most 1333) instead of fitting its long side to ``imgsz``.

Detections are the same as torchvision's when the network input is the same (tested on an input whose sides are
multiples of the largest stride, so that neither pads it); on other images the two differ only in preprocessing
(OpenCV's resize of the uint8 image and centred padding, against torch's resize of the float image and padding at
the bottom and right).

Supported: ``retinanet_resnet50_fpn`` (into retinanet-r50-fpn.yaml), ``retinanet_resnet50_fpn_v2``
(retinanet-r50-fpn-v2.yaml), ``fcos_resnet50_fpn`` (fcos-r50-fpn.yaml),
``fasterrcnn_resnet50_fpn`` (faster-rcnn-r50-fpn.yaml), ``fasterrcnn_resnet50_fpn_v2`` (faster-rcnn-r50-fpn-v2.yaml)
``maskrcnn_resnet50_fpn`` (maskrcnn-r50-fpn.yaml) and ``maskrcnn_resnet50_fpn_v2`` (maskrcnn-r50-fpn-v2.yaml). The
two-stage files count a background class, so torchvision's label ``k`` is mirrordet's class ``k - 1``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from mirrordet.engine.checkpoint import cpu_state, load_state_dict_checked
from mirrordet.engine.checkpoint_format import Checkpoint
from mirrordet.nn.graph import ModelGraph
from mirrordet.nn.parser import load_model_yaml
from mirrordet.utils.errors import CheckpointError
from mirrordet.utils.log import LOGGER

IMAGENET = "normalize: {mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225]}"
TORCHVISION_RESIZE = "resize: {min_size: 800, max_size: 1333}"  # GeneralizedRCNNTransform's defaults
Rule = tuple[str, Callable[[re.Match], str]]


def _subnet(prefix: str) -> Callable[[re.Match], str]:
    """``conv.<i>.0.`` of a torchvision head branch -> mirrordet's ``<prefix>.<2 i>.`` (conv, ReLU pairs)."""
    return lambda m: f"{prefix}.{2 * int(m.group(1))}."


@dataclass(frozen=True)
class Family:
    """One torchvision detector and the mirrordet YAML with its layout.

    Attributes:
        name: torchvision's builder. yaml: the bundled YAML. marker / absent: keys that identify its state dicts
        (present / not present). rules: (regex on a torchvision key, replacement of the match) in order.
        nc_key, anchors, background: the key whose first dimension is ``anchors x (nc + background)``, the anchors
        per location, and 1 when torchvision counts a background class there (two-stage heads: torchvision's
        label ``k`` is mirrordet's class ``k - 1``).
    """

    name: str
    yaml: str
    marker: str
    absent: tuple[str, ...]
    rules: tuple[Rule, ...]
    nc_key: str
    anchors: int
    background: int = 0


_RESNET_FPN: tuple[Rule, ...] = (
    (r"^backbone\.body\.conv1\.", lambda m: "layers.0.stages.0.0."),
    (r"^backbone\.body\.bn1\.", lambda m: "layers.0.stages.0.1."),
    (r"^backbone\.body\.layer(\d)\.", lambda m: f"layers.0.stages.{m.group(1)}."),
    (r"^backbone\.fpn\.", lambda m: "layers.1.fpn."),
)
_RCNN: tuple[Rule, ...] = (
    (r"^rpn\.head\.conv\.0\.0\.", lambda m: "layers.2.rpn.conv.0."),
    (r"^rpn\.head\.(cls_logits|bbox_pred)\.", lambda m: f"layers.2.rpn.{m.group(1)}."),
    (r"^roi_heads\.box_head\.fc6\.", lambda m: "layers.2.box_head.1."),
    (r"^roi_heads\.box_head\.fc7\.", lambda m: "layers.2.box_head.3."),
    (r"^roi_heads\.box_predictor\.(cls_score|bbox_pred)\.", lambda m: f"layers.2.{m.group(1)}."),
)
_RCNN_V2: tuple[Rule, ...] = (
    (r"^rpn\.head\.conv\.(\d)\.0\.", lambda m: f"layers.2.rpn.conv.{2 * int(m.group(1))}."),
    (r"^rpn\.head\.(cls_logits|bbox_pred)\.", lambda m: f"layers.2.rpn.{m.group(1)}."),
    (r"^roi_heads\.box_head\.", lambda m: "layers.2.box_head."),  # the same (conv, BN) x 4, fc layout
    (r"^roi_heads\.box_predictor\.(cls_score|bbox_pred)\.", lambda m: f"layers.2.{m.group(1)}."),
)
_MASK: tuple[Rule, ...] = (
    (r"^roi_heads\.mask_head\.", lambda m: "layers.2.mask_head."),
    (r"^roi_heads\.mask_predictor\.conv5_mask\.", lambda m: "layers.2.mask_predictor.0."),
    (r"^roi_heads\.mask_predictor\.mask_fcn_logits\.", lambda m: "layers.2.mask_predictor.2."),
)
FAMILIES = (
    Family("retinanet_resnet50_fpn_v2", "retinanet-r50-fpn-v2.yaml", "head.classification_head.conv.0.1.weight", (),
           _RESNET_FPN + (  # towers of (conv, GroupNorm) pairs: conv.<i>.<j> -> subnet.<3 i + j> (a ReLU each third)
               (r"^head\.classification_head\.conv\.(\d+)\.(\d)\.",
                lambda m: f"layers.2.cls_subnet.{3 * int(m.group(1)) + int(m.group(2))}."),
               (r"^head\.classification_head\.cls_logits\.", lambda m: "layers.2.cls_logits."),
               (r"^head\.regression_head\.conv\.(\d+)\.(\d)\.",
                lambda m: f"layers.2.box_subnet.{3 * int(m.group(1)) + int(m.group(2))}."),
               (r"^head\.regression_head\.bbox_reg\.", lambda m: "layers.2.bbox_reg."),
           ), "head.classification_head.cls_logits.weight", 9),
    Family("retinanet_resnet50_fpn", "retinanet-r50-fpn.yaml", "head.classification_head.cls_logits.weight",
           ("head.classification_head.conv.0.1.weight",  # GroupNorm in the towers: retinanet_resnet50_fpn_v2
            "head.regression_head.bbox_ctrness.weight"),  # FCOS
           _RESNET_FPN + (
               (r"^head\.classification_head\.conv\.(\d+)\.0\.", _subnet("layers.2.cls_subnet")),
               (r"^head\.classification_head\.cls_logits\.", lambda m: "layers.2.cls_logits."),
               (r"^head\.regression_head\.conv\.(\d+)\.0\.", _subnet("layers.2.box_subnet")),
               (r"^head\.regression_head\.bbox_reg\.", lambda m: "layers.2.bbox_reg."),
           ), "head.classification_head.cls_logits.weight", 9),
    Family("fcos_resnet50_fpn", "fcos-r50-fpn.yaml", "head.regression_head.bbox_ctrness.weight", (),
           _RESNET_FPN + (
               (r"^head\.classification_head\.conv\.", lambda m: "layers.2.cls_branch."),  # conv, GN, ReLU alike
               (r"^head\.classification_head\.cls_logits\.", lambda m: "layers.2.cls_logits."),
               (r"^head\.regression_head\.conv\.", lambda m: "layers.2.box_branch."),
               (r"^head\.regression_head\.(bbox_reg|bbox_ctrness)\.", lambda m: f"layers.2.{m.group(1)}."),
           ), "head.classification_head.cls_logits.weight", 1),
    Family("maskrcnn_resnet50_fpn", "maskrcnn-r50-fpn.yaml", "roi_heads.mask_predictor.mask_fcn_logits.weight",
           ("roi_heads.box_head.0.0.weight",), _RESNET_FPN + _RCNN + _MASK,
           "roi_heads.box_predictor.cls_score.weight", 1, background=1),
    Family("fasterrcnn_resnet50_fpn", "faster-rcnn-r50-fpn.yaml", "roi_heads.box_head.fc6.weight",
           ("roi_heads.mask_predictor.mask_fcn_logits.weight",), _RESNET_FPN + _RCNN,
           "roi_heads.box_predictor.cls_score.weight", 1, background=1),
    Family("fasterrcnn_resnet50_fpn_v2", "faster-rcnn-r50-fpn-v2.yaml", "roi_heads.box_head.0.0.weight",
           ("roi_heads.mask_predictor.mask_fcn_logits.weight",), _RESNET_FPN + _RCNN_V2,
           "roi_heads.box_predictor.cls_score.weight", 1, background=1),
    Family("maskrcnn_resnet50_fpn_v2", "maskrcnn-r50-fpn-v2.yaml", "roi_heads.mask_head.0.1.weight", (),
           _RESNET_FPN + _RCNN_V2 + _MASK, "roi_heads.box_predictor.cls_score.weight", 1, background=1),
)
# torchvision families recognized by a key, refused by name until mirrordet reproduces them
# torchvision detectors recognized by a key and refused by name (checked before FAMILIES: some share their keys)
NOT_YET = {"roi_heads.keypoint_predictor.kps_score_lowres.weight": "keypointrcnn_resnet50_fpn",
           "backbone.body.0.0.weight": "a MobileNet-trunk detector (fasterrcnn_mobilenet_v3_large_fpn, ...)",
           "head.classification_head.module_list.0.weight": "ssd300_vgg16 / ssdlite320_mobilenet_v3_large"}


def detect_family(state: dict[str, torch.Tensor]) -> Family | None:
    """The supported family whose keys ``state`` has (None: not a torchvision detector mirrordet reads).

    Raises:
        CheckpointError: a torchvision detector family mirrordet does not reproduce (named).
    """
    for key, name in NOT_YET.items():
        if key in state:
            raise CheckpointError(f"this is a torchvision {name} state dict; mirrordet imports only "
                                  f"{', '.join(f.name for f in FAMILIES)}")
    for family in FAMILIES:
        if family.marker in state and not any(k in state for k in family.absent):
            return family
    return None


def rename(key: str, family: Family) -> str | None:
    """A torchvision key under mirrordet's name (None: no rule matches)."""
    for pattern, repl in family.rules:
        m = re.match(pattern, key)
        if m:
            return repl(m) + key[m.end():]
    return None


def _names(nc: int, family: Family) -> dict[int, str]:
    """COCO's category names for a COCO file (torchvision's own list of 91, index = torchvision's label; the
    background entry dropped where it is not a class of the model), else ``class<i>``."""
    if nc + family.background == 91:
        from torchvision.models import get_model_weights

        for weights in get_model_weights(family.name):
            categories = weights.meta.get("categories")
            if isinstance(categories, list) and len(categories) == 91:
                return {i: str(c) for i, c in enumerate(categories[family.background:])}
    return {i: f"class{i}" for i in range(nc)}


def convert_state_dict(state: dict[str, torch.Tensor], family: Family, source: str | Path) -> Checkpoint:
    """torchvision tensors -> a mirrordet :class:`Checkpoint` of ``family``'s YAML (plus ``normalize`` and
    ``conventions: torchvision``).

    Raises:
        CheckpointError: a key no rule maps, or tensors that do not fit the architecture (named).
    """
    out_channels = state[family.nc_key].shape[0]
    if out_channels % family.anchors:
        raise CheckpointError(f"{source}: {family.nc_key} has {out_channels} outputs, not a multiple of "
                              f"{family.anchors} anchors")
    nc = out_channels // family.anchors - family.background
    text = load_model_yaml(family.yaml)[1].rstrip() + f"\n\n# imported from torchvision {family.name}\n" \
        f"{IMAGENET}\n{TORCHVISION_RESIZE}\nconventions: torchvision\n"
    names = _names(nc, family)
    net = ModelGraph(text, nc=nc, source=f"{source} ({family.yaml})", names=names)
    mapped: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        name = rename(key, family)
        if name is None:
            raise CheckpointError(f"{source}: torchvision key {key!r} has no place in {family.yaml}")
        mapped[name] = tensor.float() if tensor.is_floating_point() else tensor
    for name, tensor in net.state_dict().items():  # mirrordet's own buffers; FrozenBatchNorm has no counter
        if name not in mapped and (name.endswith(".stride") or name.endswith(".num_batches_tracked")):
            mapped[name] = tensor
    load_state_dict_checked(net, mapped, source)
    LOGGER.info(f"{source}: torchvision {family.name} state dict ({nc} classes) converted into {family.yaml}")
    return Checkpoint(model_yaml=text, model=cpu_state(net.state_dict()), model_cfg={"scale": None, "nc": nc},
                      names=names, train_args={}, date="", version=f"torchvision {family.name}")


def read_torchvision_state(state: dict[str, torch.Tensor], source: str | Path) -> Checkpoint | None:
    """A loaded state dict converted when it is a supported torchvision detector's; None when it is not one.

    Raises:
        CheckpointError: a torchvision detector mirrordet does not reproduce, or tensors that do not fit.
    """
    family = detect_family(state)
    return None if family is None else convert_state_dict(state, family, source)
