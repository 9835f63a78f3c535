"""per_level_nms (torchvision's one-stage decoding) and the anchors placed as torchvision places them."""

import torch

from mirrordet.ops.anchor_boxes import grid_anchors, torchvision_grid_anchors
from mirrordet.ops.nms import NMSSettings, per_level_nms


def test_topk_is_taken_per_level_and_boxes_are_clipped_before_nms():
    # level 0: 3 far-apart boxes; level 1: 1 box running past the right edge of a 100 x 50 input
    boxes = torch.tensor([[10.0, 10, 4, 4], [40, 10, 4, 4], [70, 10, 4, 4], [95, 25, 30, 10]])  # xywh
    scores = torch.tensor([[0.9], [0.8], [0.7], [0.3]])  # one class
    pred = torch.cat([boxes, scores], 1).T[None]  # [1, 5, 4]
    d = per_level_nms(pred, [3, 1], (50, 100), NMSSettings(conf=0.05, iou=0.5, max_det=10), topk=2)[0]
    assert d.scores.tolist() == [0.8999999761581421, 0.800000011920929, 0.30000001192092896]  # 0.7: level 0's 3rd
    assert d.boxes[-1].tolist() == [80.0, 20.0, 100.0, 30.0]  # x2 110 clipped to the width
    none = per_level_nms(pred, [3, 1], (50, 100), NMSSettings(conf=0.95), topk=2)[0]
    assert len(none) == 0


def test_torchvision_anchors_sit_on_cell_corners_with_whole_pixel_sizes():
    tv = torchvision_grid_anchors([(2, 2)], [8.0], [32.0], [1.0], [1.0, 2 ** (1 / 3)])
    ours = grid_anchors([(2, 2)], [8.0], [32.0], [1.0], [1.0, 2 ** (1 / 3)])
    assert tv[0].tolist() == [-16.0, -16.0, 16.0, 16.0]  # centred on (0, 0), not (4, 4)
    assert tv[1].tolist() == [-20.0, -20.0, 20.0, 20.0]  # int(32 * 2^(1/3)) = 40, as torchvision lists its sizes
    assert ours[0].tolist() == [-12.0, -12.0, 20.0, 20.0]
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.image_list import ImageList

    gen = AnchorGenerator(((32, 40),), ((1.0,),))
    feats = [torch.zeros(1, 1, 2, 2)]
    ref = gen(ImageList(torch.zeros(1, 3, 16, 16), [(16, 16)]), feats)[0]
    assert torch.equal(ref, tv)
