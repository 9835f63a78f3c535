"""Tests of mirrordet.engine.optim."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mirrordet.engine.optim import (
    build_lr_lambda,
    build_optimizer,
    fused_adam_supported,
    optimizer_momentum,
    split_param_groups,
    warmup_step,
)
from mirrordet.utils.errors import ConfigError


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 1)
        self.gn = nn.GroupNorm(2, 8)
        self.ln = nn.LayerNorm(8)
        self.fc = nn.Linear(8, 4)
        self.frozen = nn.Linear(4, 4)
        self.frozen.requires_grad_(False)
        self.scale = nn.Parameter(torch.ones(1))
        self.head = nn.Sequential(self.fc)  # shared module: its parameters must appear once


def _ids(ps) -> list[int]:
    return [id(p) for p in ps]


def test_groups_partition_trainable_params_exactly():
    net = _Net()
    decay, norm, bias = split_param_groups(net)
    all_ids = _ids(decay) + _ids(norm) + _ids(bias)
    assert len(all_ids) == len(set(all_ids))  # no parameter twice
    trainable = {id(p) for p in net.parameters() if p.requires_grad}
    assert set(all_ids) == trainable  # none missing, no frozen one
    assert set(_ids(decay)) == {id(net.conv.weight), id(net.conv2.weight), id(net.fc.weight), id(net.scale)}
    assert set(_ids(norm)) == {id(net.bn.weight), id(net.gn.weight), id(net.ln.weight)}
    biases = (net.bn.bias, net.conv2.bias, net.gn.bias, net.ln.bias, net.fc.bias)
    assert set(_ids(bias)) == set(_ids(biases))


@pytest.mark.parametrize(
    "name,cls", [("SGD", torch.optim.SGD), ("adam", torch.optim.Adam), ("AdamW", torch.optim.AdamW)]
)
def test_build_named_optimizers(name, cls):
    net = _Net()
    opt, resolved, lr = build_optimizer(net, name, lr=0.02, momentum=0.8, weight_decay=1e-3)
    assert isinstance(opt, cls)
    assert resolved == cls.__name__ and lr == 0.02
    g = opt.param_groups
    assert len(g) == 3
    assert [grp["weight_decay"] for grp in g] == [1e-3, 0.0, 0.0]
    assert all(grp["lr"] == 0.02 for grp in g)
    assert sum(len(grp["params"]) for grp in g) == sum(1 for p in net.parameters() if p.requires_grad)
    assert optimizer_momentum(opt) == 0.8
    if cls is torch.optim.SGD:
        assert g[0]["nesterov"] is True and g[0]["momentum"] == 0.8
    else:
        assert g[0]["betas"] == (0.8, 0.999)


def test_auto_small_run_uses_adamw_fit_to_classes():
    opt, resolved, lr = build_optimizer(_Net(), "auto", lr=0.5, iterations=5000, nc=80)
    assert isinstance(opt, torch.optim.AdamW) and resolved == "AdamW"
    assert lr == round(0.002 * 5 / 84, 6) == 0.000119
    assert optimizer_momentum(opt) == 0.9
    _, _, lr3 = build_optimizer(_Net(), "auto", iterations=10000, nc=3)
    assert lr3 == round(0.01 / 7, 6)


def test_auto_long_run_uses_sgd():
    opt, resolved, lr = build_optimizer(_Net(), "auto", lr=0.5, iterations=10001)
    assert isinstance(opt, torch.optim.SGD) and resolved == "SGD" and lr == 0.01
    assert opt.param_groups[0]["lr"] == 0.01


def test_unknown_name_lists_valid_names():
    with pytest.raises(ConfigError, match="SGD, Adam, AdamW"):
        build_optimizer(_Net(), "lion")


def test_no_trainable_params_is_an_error():
    net = nn.Linear(2, 2).requires_grad_(False)
    with pytest.raises(ConfigError, match="no trainable"):
        build_optimizer(net, "SGD")


def test_optimizer_steps_and_decay_only_on_group0():
    net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    opt, _, _ = build_optimizer(net, "SGD", lr=0.1, momentum=0.0, weight_decay=1.0)
    w0, bnw0 = net[0].weight.detach().clone(), net[1].weight.detach().clone()
    for p in net.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()  # zero gradients: only weight decay moves parameters
    torch.testing.assert_close(net[0].weight, w0 * 0.9)
    torch.testing.assert_close(net[1].weight, bnw0)


def test_lr_lambda_linear_and_cosine_values():
    lin = build_lr_lambda(10, 0.01, cos=False)
    assert lin(0) == pytest.approx(1.0)
    assert lin(5) == pytest.approx(0.505)
    assert lin(10) == pytest.approx(0.01)
    cos = build_lr_lambda(10, 0.01, cos=True)
    assert cos(0) == pytest.approx(1.0)
    assert cos(5) == pytest.approx(0.505)
    assert cos(10) == pytest.approx(0.01)
    assert cos(2) == pytest.approx(((1 - math.cos(2 * math.pi / 10)) / 2) * (0.01 - 1) + 1)
    assert cos(2) > lin(2)  # cosine decays more slowly at the start
    with pytest.raises(ConfigError):
        build_lr_lambda(0, 0.01, cos=False)


def test_warmup_interpolation():
    net = _Net()
    opt, _, lr0 = build_optimizer(net, "SGD", lr=0.01, momentum=0.937)
    lf = build_lr_lambda(100, 0.01)
    kw = dict(nw=100, epoch=0, lr_lambda=lf, lr0=lr0, warmup_bias_lr=0.1, momentum=0.937, warmup_momentum=0.8)
    lrs = warmup_step(opt, ni=0, **kw)
    assert lrs == [0.0, 0.0, 0.1]
    assert opt.param_groups[0]["momentum"] == pytest.approx(0.8)
    lrs = warmup_step(opt, ni=50, **kw)
    assert lrs[0] == pytest.approx(0.005) and lrs[1] == pytest.approx(0.005)
    assert lrs[2] == pytest.approx(0.1 + 0.5 * (0.01 - 0.1))
    assert opt.param_groups[1]["momentum"] == pytest.approx(0.8685)
    lrs = warmup_step(opt, ni=100, **kw)
    assert lrs == pytest.approx([0.01, 0.01, 0.01])
    assert [g["lr"] for g in opt.param_groups] == lrs
    kw["epoch"] = 1  # the target follows the schedule of the current epoch
    assert warmup_step(opt, ni=100, **kw)[0] == pytest.approx(0.01 * lf(1))


def test_warmup_sets_adam_beta1_and_handles_no_warmup():
    opt, _, lr0 = build_optimizer(_Net(), "AdamW", lr=0.001, momentum=0.9)
    lf = build_lr_lambda(10, 0.1)
    kw = dict(epoch=0, lr_lambda=lf, lr0=lr0, warmup_bias_lr=0.0, momentum=0.9, warmup_momentum=0.5)
    warmup_step(opt, ni=0, nw=10, **kw)
    assert opt.param_groups[2]["betas"] == (0.5, 0.999)
    lrs = warmup_step(opt, ni=0, nw=0, **kw)
    assert lrs == pytest.approx([0.001] * 3)
    assert opt.param_groups[0]["betas"] == (0.9, 0.999)


def _torch_at_least(major: int, minor: int) -> bool:
    return tuple(int(v) for v in torch.__version__.split("+")[0].split(".")[:2]) >= (major, minor)


def test_fused_adam_only_where_torch_has_the_kernel():
    params = [nn.Parameter(torch.ones(3))]
    assert fused_adam_supported(params) is _torch_at_least(2, 4)
    assert fused_adam_supported([]) is False
    assert fused_adam_supported([nn.Parameter(torch.ones(3, dtype=torch.float64)), *params]) is _torch_at_least(2, 4)
    opt, _, _ = build_optimizer(_Net(), "AdamW", lr=0.01, momentum=0.9, weight_decay=1e-3)
    assert bool(opt.defaults.get("fused")) is _torch_at_least(2, 4)


@pytest.mark.parametrize("name", ["Adam", "AdamW"])
def test_fused_step_matches_the_reference_loop(name):
    """The fused optimizer built here takes the same steps as torch's per-tensor reference loop,
    also after warmup has changed a group's lr and beta1."""
    torch.manual_seed(0)
    net = _Net()
    ref = _Net()
    ref.load_state_dict(net.state_dict())
    opt, _, _ = build_optimizer(net, name, lr=0.01, momentum=0.9, weight_decay=1e-3)
    cls = torch.optim.Adam if name == "Adam" else torch.optim.AdamW
    groups = [{"params": [dict(ref.named_parameters())[n] for n in names], "weight_decay": g["weight_decay"]}
              for names, g in zip(_group_names(net, opt), opt.param_groups)]
    ref_opt = cls(groups, lr=0.01, betas=(0.9, 0.999), foreach=False)
    x = torch.randn(2, 3, 6, 6)
    for it in range(3):
        for o, m in ((opt, net), (ref_opt, ref)):
            warmup_step(o, it, 2, 0, lambda e: 1.0, 0.01, 0.1, 0.9, 0.8)
            o.zero_grad()
            y = m.conv2(m.bn(m.conv(x))).mean((2, 3))
            m.head(m.ln(m.gn(y[..., None, None]).flatten(1)) * m.scale).sum().backward()
            o.step()
    for (n, p), q in zip(net.named_parameters(), ref.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6, msg=n)


def _group_names(net: nn.Module, opt: torch.optim.Optimizer) -> list[list[str]]:
    names = {id(p): n for n, p in net.named_parameters()}
    return [[names[id(p)] for p in g["params"]] for g in opt.param_groups]


@pytest.mark.parametrize("warmup_epochs, nb, epochs, expected", [
    (3.0, 25, 30, 100),  # the YOLO recipe's floor of 100 iterations
    (3.0, 100, 30, 300),  # 3 epochs of 100 batches
    (3.0, 25, 6, 50),  # a 6-epoch run: at most a third of its 150 iterations
    (3.0, 2, 1, 1),  # never below one iteration
    (0.0, 25, 30, -1),  # no warmup
])
def test_warmup_iterations_never_exceed_a_third_of_the_run(warmup_epochs, nb, epochs, expected):
    from mirrordet.engine.optim import warmup_iterations

    assert warmup_iterations(warmup_epochs, nb, epochs) == expected


def test_refit_shortens_a_running_warmup_and_never_restarts_one():
    from mirrordet.engine.train_state import EpochPlan

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda=lambda e: 1.0)
    plan = EpochPlan(30, 0.01, False)
    plan.set_warmup(3.0, 25)
    assert plan.warmup_iters == 100
    plan.refit(6, 1, opt, sched)  # time= re-fit after epoch 1: 150 iterations in all
    assert plan.warmup_iters == 50
    plan.refit(3, 2, opt, sched)  # a third of 75 iterations is behind: the warmup ends with the next iteration
    assert plan.warmup_iters == 50
    plan.refit(60, 2, opt, sched)  # a longer plan never lengthens or restarts it
    assert plan.warmup_iters == 50
