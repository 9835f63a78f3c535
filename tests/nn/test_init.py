"""The model-level init policy ``zero_init_residual`` (a top-level YAML key)."""

from pathlib import Path

import pytest
import torch

from mirrordet.nn import build_model
from mirrordet.nn.init import zero_init_residual
from mirrordet.nn.modules.blocks import Bottleneck

BLOCKS = ["C2f", "CSPMirror"]

TEMPLATE = """nc: 3
{key}backbone:
  - [-1, 1, Conv, [16, 3, 2]]
  - [-1, 2, {block}, [16, True]]
  - [-1, 1, {block}, [32, False]]
head:
  - [-1, 1, Classify, [nc]]
"""


def _build(tmp_path: Path, block: str, on: bool | None):
    key = "" if on is None else f"zero_init_residual: {str(on).lower()}\n"
    p = tmp_path / "m.yaml"
    p.write_text(TEMPLATE.format(key=key, block=block))
    return build_model(p)


@pytest.mark.parametrize("block", BLOCKS)
def test_residual_blocks_start_as_identity(tmp_path, block):
    model = _build(tmp_path, block, True).eval()
    residual = [m for m in model.modules() if isinstance(m, Bottleneck) and m.add]
    plain = [m for m in model.modules() if isinstance(m, Bottleneck) and not m.add]
    assert len(residual) == 2 and len(plain) == 1  # shortcut=False rows keep their branch
    for m in residual:
        x = torch.randn(2, m.cv1.conv.in_channels, 8, 8)
        assert torch.equal(m.cv2.bn.weight, torch.zeros_like(m.cv2.bn.weight))
        torch.testing.assert_close(m(x), x)  # x + SiLU(BN(...) * 0 + 0) == x
    assert plain[0].cv2.bn.weight.abs().min() > 0


@pytest.mark.parametrize("block", BLOCKS)
@pytest.mark.parametrize("on", [None, False])
def test_off_by_default(tmp_path, block, on):
    model = _build(tmp_path, block, on)
    for m in model.modules():
        if isinstance(m, Bottleneck):
            assert m.cv2.bn.weight.abs().min() > 0


def test_function_counts_branches_and_gradients_still_flow(tmp_path):
    model = _build(tmp_path, "C2f", None)
    assert zero_init_residual(model) == 2
    model.train()
    model(torch.randn(2, 3, 32, 32)).sum().backward()
    grads = [m.cv2.bn.weight.grad for m in model.modules() if isinstance(m, Bottleneck) and m.add]
    assert all(g is not None and g.abs().sum() > 0 for g in grads)  # the zeroed scales learn


def test_same_parameters_as_without(tmp_path):
    a, b = _build(tmp_path, "CSPMirror", True), _build(tmp_path, "CSPMirror", False)
    assert [(n, p.shape) for n, p in a.named_parameters()] == [(n, p.shape) for n, p in b.named_parameters()]
