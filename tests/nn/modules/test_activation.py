"""The top-level `activation` key: a fixed table of spellings, applied to every Conv of the build."""

import pytest
from torch import nn

from mirrordet.nn.graph import ModelGraph
from mirrordet.nn.modules.activation import default_activation, parse_activation
from mirrordet.nn.modules.conv import Conv
from mirrordet.utils.errors import ModelConfigError

BODY = """nc: 2
backbone:
  - [-1, 1, Conv, [16, 3, 2]]
  - [-1, 1, SPPF, [16, 5]]
head:
  - [-1, 1, Classify, [nc]]
"""


@pytest.mark.parametrize("spec, cls", [("torch.nn.ReLU()", nn.ReLU), ("nn.ReLU", nn.ReLU), ("SiLU", nn.SiLU),
                                       ("hardswish", nn.Hardswish), ("nn.LeakyReLU(0.1)", nn.LeakyReLU),
                                       (" nn.GELU() ", nn.GELU)])
def test_spellings_map_to_the_table(spec, cls):
    act = parse_activation(spec)()
    assert type(act) is cls
    if cls is nn.LeakyReLU:
        assert act.negative_slope == pytest.approx(0.1)


@pytest.mark.parametrize("spec, match", [("os.system('x')", "is not one of"), ("nn.Conv2d()", "is not one of"),
                                         ("nn.ReLU(3)", "takes no argument"), (3, "is not one of"),
                                         ("torch.nn.functional.relu", "is not one of"), ("nn.LeakyReLU(.)", "number")])
def test_anything_else_is_a_clear_error(spec, match):
    with pytest.raises(ModelConfigError, match=match):
        parse_activation(spec, "m.yaml")


def test_every_conv_of_the_build_uses_it_and_the_default_comes_back():
    model = ModelGraph("activation: torch.nn.ReLU()\n" + BODY)
    acts = [type(m.act) for m in model.modules() if isinstance(m, Conv)]
    assert len(acts) >= 4 and set(acts) == {nn.ReLU}  # SPPF's and Classify's inner convs included
    assert type(default_activation()) is nn.SiLU and type(Conv(3, 8).act) is nn.SiLU
    plain = ModelGraph(BODY)
    assert {type(m.act) for m in plain.modules() if isinstance(m, Conv)} == {nn.SiLU}


def test_a_conv_without_activation_stays_without():
    model = ModelGraph("activation: nn.ReLU\n" + BODY.replace("[16, 3, 2]", "[16, 3, 2, None, 1, 1, False]"))
    assert type(model.layers[0].act) is nn.Identity


def test_bad_activation_in_a_file_names_the_file():
    with pytest.raises(ModelConfigError, match=r"m\.yaml: `activation` 'eval\(1\)'"):
        ModelGraph("activation: eval(1)\n" + BODY, source="m.yaml")
