"""Every registered module builds from its YAML example, runs forward + backward, and is wired."""

import pytest
import torch

from mirrordet.nn.graph import ModelGraph
from mirrordet.registry import MODULES
import mirrordet.nn.modules  # noqa: F401

STEM = "  - [-1, 1, Conv, [16, 3, 2]]\n  - [-1, 1, Conv, [32, 3, 2]]\n  - [-1, 1, Conv, [64, 3, 2]]\n"


def example_yaml(name: str) -> str:
    cls = MODULES.get(name)
    assert hasattr(cls, "yaml_example"), f"{name} must declare yaml_example = (from, args)"
    src, args = cls.yaml_example
    return f"nc: 3\nbackbone:\n{STEM}head:\n  - [{src}, 1, {name}, {args!r}]\n"


def _leaves(o):
    """The tensors inside a (nested) training output."""
    if isinstance(o, torch.Tensor):
        return [o]
    return [t for x in o for t in _leaves(x)] if isinstance(o, (list, tuple)) else []


@pytest.mark.parametrize("name", MODULES.names())
def test_module_builds_runs_and_backprops(name, objective, upstream, box_targets):
    model = ModelGraph(example_yaml(name), source=f"<{name}>")
    model.train()
    x = torch.randn(2, 3, 64, 64)
    out = model(x, box_targets(x))  # targets reach only heads that sample their own
    outs = out if isinstance(out, list) else [out]
    tensors = [t for o in outs for t in _leaves(o)]
    assert tensors and all(torch.isfinite(t).all() for t in tensors)
    if not getattr(model.layers[-1], "needs_targets", False):  # those also return per-RoI and per-image entries
        assert all(t.shape[0] == 2 for t in tensors)
    objective(model, out, x).backward()
    missing = [n for n, p in upstream(model) if p.grad is None]  # the stem is unused when the row reads the image
    assert not missing, f"parameters without gradient: {missing}"
    model.eval()
    with torch.no_grad():
        model(torch.randn(1, 3, 64, 64))


@pytest.mark.parametrize("name", MODULES.names())
def test_module_rejects_bad_argument_types(name):
    from mirrordet.utils.errors import ModelConfigError

    src = MODULES.get(name).yaml_example[0]
    bad = f"nc: 3\nbackbone:\n{STEM}head:\n  - [{src}, 1, {name}, ['x', 'y', 'z', 'w', 'v', 'u', 't', 's']]\n"
    with pytest.raises(ModelConfigError, match=r"layer 3 \(head row 0\)"):
        ModelGraph(bad, source="bad.yaml")
