"""Top-level keys of model YAMLs beyond the layers: end2end, reg_max, kpt_shape, batchnorm, normalize,
conventions."""

import pytest

from mirrordet.nn.graph import ModelGraph
from mirrordet.utils.errors import ModelConfigError

BODY = """nc: 3
backbone:
  - [-1, 1, Conv, [16, 3, 2]]
  - [-1, 1, Conv, [32, 3, 2]]
  - [-1, 1, Conv, [64, 3, 2]]
head:
  - [[0, 1, 2], 1, Detect, [nc]]
"""


def test_defaults_are_a_dfl_head_with_nms():
    head = ModelGraph(BODY).head
    assert head.reg_max == 16 and not head.end2end and not hasattr(head, "one2one_cv2")


def test_end2end_and_reg_max_reach_the_head():
    head = ModelGraph("end2end: true\nreg_max: 1\n" + BODY).head
    assert head.end2end and head.reg_max == 1 and head.train_outputs == ("one2many", "one2one")
    assert head.cv2[0][-1].out_channels == 4 and head.one2one_cv2[0][-1].out_channels == 4


def test_a_row_reg_max_wins_over_the_file():
    assert ModelGraph("reg_max: 8\n" + BODY.replace("[nc]]", "[nc, 4]]")).head.reg_max == 4


def test_batchnorm_constants_reach_every_batchnorm_layer():
    from torch import nn

    bns = [m for m in ModelGraph("batchnorm: {eps: 1.0e-5, momentum: 0.1}\n" + BODY).modules()
           if isinstance(m, nn.BatchNorm2d)]
    assert bns and all(m.eps == 1e-5 and m.momentum == 0.1 for m in bns)
    assert all(m.eps == 1e-3 and m.momentum == 0.03 for m in ModelGraph(BODY).modules() if isinstance(m, nn.BatchNorm2d))


def test_normalize_standardizes_the_input_inside_the_network():
    import torch

    plain = ModelGraph(BODY).eval()
    norm = ModelGraph("normalize: {mean: [0.1, 0.2, 0.3], std: [0.5, 0.25, 2.0]}\n" + BODY).eval()
    norm.load_state_dict(plain.state_dict())  # the constants are not tensors of the checkpoint
    x = torch.rand(1, 3, 64, 64)
    mean, std = torch.tensor([0.1, 0.2, 0.3]).view(1, 3, 1, 1), torch.tensor([0.5, 0.25, 2.0]).view(1, 3, 1, 1)
    with torch.no_grad():
        assert torch.allclose(norm(x), plain((x - mean) / std), atol=1e-5)
        assert not torch.allclose(norm(x), plain(x), atol=1e-3)


def test_kpt_shape_is_parsed():
    assert ModelGraph("kpt_shape: [17, 3]\n" + BODY).kpt_shape == (17, 3)
    assert ModelGraph(BODY).kpt_shape is None


@pytest.mark.parametrize("line, match", [("end2end: 1", "`end2end` must be true or false"),
                                         ("reg_max: 0", r"`reg_max` must be an integer in \[1, 64\]"),
                                         ("reg_max: 1.5", "`reg_max` must be an integer"),
                                         ("kpt_shape: [17, 4]", "`kpt_shape` must be"),
                                         ("kpt_shape: 17", "`kpt_shape` must be"),
                                         ("batchnorm: {eps: 0}", "`batchnorm` must be"),
                                         ("batchnorm: {eps: 1.0e-5, decay: 0.1}", "`batchnorm` must be"),
                                         ("batchnorm: 0.1", "`batchnorm` must be"),
                                         ("normalize: {mean: [0.5, 0.5], std: [1, 1, 1]}", "`normalize` must be"),
                                         ("normalize: {mean: [0, 0, 0], std: [1, 0, 1]}", "`normalize` must be"),
                                         ("normalize: {mean: [0, 0, 0]}", "`normalize` must be"),
                                         ("normalize: [0.5, 0.2]", "`normalize` must be"),
                                         ("conventions: detectron2", "`conventions` must be one of"),
                                         ("resize: {min_size: 800}", "`resize` must be"),
                                         ("resize: {min_size: 900, max_size: 800}", "`resize` must be"),
                                         ("resize: 800", "`resize` must be")])
def test_bad_values_name_the_file(line, match):
    with pytest.raises(ModelConfigError, match=f"m.yaml: {match}"):
        ModelGraph(f"{line}\n" + BODY, source="m.yaml")
