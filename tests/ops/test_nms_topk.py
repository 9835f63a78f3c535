"""dense_topk: the NMS-free selection of end-to-end heads."""

import torch

from mirrordet.ops.nms import NMSSettings, dense_topk


def _pred() -> torch.Tensor:
    """[1, 4 + 3, 4]: four boxes, three classes."""
    p = torch.zeros(1, 7, 4)
    p[0, :4] = torch.tensor([[10.0, 10.0, 4.0, 4.0]] * 4).T
    p[0, 4:] = torch.tensor([[0.9, 0.1, 0.2, 0.3],   # class 0
                             [0.8, 0.7, 0.1, 0.0],   # class 1
                             [0.0, 0.0, 0.6, 0.05]])  # class 2
    return p


def test_best_class_per_box_then_top_k():
    d = dense_topk(_pred(), NMSSettings(conf=0.25, max_det=3))[0]
    assert d.labels.tolist() == [0, 1, 2] and d.scores.tolist() == [0.8999999761581421, 0.699999988079071,
                                                                    0.6000000238418579]


def test_multi_label_lets_every_pair_compete():
    d = dense_topk(_pred(), NMSSettings(conf=0.25, max_det=3, multi_label=True))[0]
    assert d.labels.tolist() == [0, 1, 1]  # box 0 counts twice (0.9 class 0, 0.8 class 1)
    assert d.boxes.shape == (3, 4)


def test_classes_and_conf_filter():
    d = dense_topk(_pred(), NMSSettings(conf=0.5, max_det=10, classes=(1,)))[0]
    assert d.labels.tolist() == [1, 1] and d.scores.min() > 0.5
    assert len(dense_topk(_pred(), NMSSettings(conf=0.95))[0]) == 0
