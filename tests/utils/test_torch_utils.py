"""Tests of mirrordet.utils.torch_utils."""

from __future__ import annotations

import io
import random

import numpy as np
import pytest
import torch
from torch import nn

from mirrordet.utils.errors import ConfigError
from mirrordet.utils.torch_utils import (
    de_parallel,
    get_rng_state,
    init_seeds,
    model_param_counts,
    select_device,
    set_rng_state,
)


def _draw() -> tuple:
    return (random.random(), random.gauss(0, 1), np.random.rand(3).tolist(), np.random.randn(2).tolist(),
            torch.rand(4).tolist())


def test_select_device_cpu_forms():
    assert select_device("cpu") == torch.device("cpu")
    assert select_device("CPU") == torch.device("cpu")
    assert select_device("") == torch.device("cpu")


def test_select_device_none_picks_available():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert select_device(None).type == expected


@pytest.mark.parametrize("spec", ["0", 0, "0,1", "cuda", "cuda:0"])
def test_select_device_cuda_requests(spec):
    if torch.cuda.is_available():
        dev = select_device(spec)
        assert dev == torch.device("cuda:0")
    else:
        with pytest.raises(ConfigError, match="CUDA is not available"):
            select_device(spec)


@pytest.mark.parametrize("spec", ["gpu", "0,a", "cuda:x", "-1"])
def test_select_device_rejects_garbage(spec):
    with pytest.raises(ConfigError, match="device="):
        select_device(spec)


def test_select_device_out_of_range_index():
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    with pytest.raises(ConfigError, match="out of range"):
        select_device(str(torch.cuda.device_count()))


def test_init_seeds_repeatable():
    init_seeds(123)
    a = _draw()
    init_seeds(123)
    b = _draw()
    init_seeds(124)
    c = _draw()
    assert a == b
    assert a != c


def test_init_seeds_deterministic_switch(monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    try:
        init_seeds(0, deterministic=True)
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.is_deterministic_algorithms_warn_only_enabled()
        assert torch.backends.cudnn.deterministic
        import os

        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] in (":4096:8", ":16:8")
    finally:
        init_seeds(0, deterministic=False)
    assert not torch.are_deterministic_algorithms_enabled()


def test_de_parallel_and_param_counts():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Linear(4, 2))
    model[1].weight.requires_grad_(False)
    total = 3 * 4 * 9 + 4 + 4 + 4 + 4 * 2 + 2
    assert model_param_counts(model) == (total, total - 4)
    wrapped = nn.DataParallel(model)
    assert de_parallel(wrapped) is model
    assert de_parallel(model) is model
    assert model_param_counts(wrapped) == (total, total - 4)


def test_param_counts_shared_weight_once():
    lin = nn.Linear(3, 3)
    model = nn.Sequential(lin, lin)
    assert model_param_counts(model)[0] == 12


def test_rng_state_round_trip_through_weights_only_load():
    init_seeds(7)
    _draw()  # advance, so the state is not a fresh seed
    state = get_rng_state()
    buf = io.BytesIO()
    torch.save({"rng": state}, buf)
    expected = _draw()
    init_seeds(999)  # scramble every generator
    _draw()
    buf.seek(0)
    loaded = torch.load(buf, map_location="cpu", weights_only=True)["rng"]
    set_rng_state(loaded)
    assert _draw() == expected


def test_rng_state_python_gauss_cache_restored():
    random.seed(3)
    random.gauss(0, 1)  # leaves a cached second normal in python's generator
    state = get_rng_state()
    expected = random.gauss(0, 1)
    random.seed(4)
    set_rng_state(state)
    assert random.gauss(0, 1) == expected


def test_rng_state_partial_dict_ok():
    torch.manual_seed(1)
    state = {"torch": torch.get_rng_state()}
    x = torch.rand(2)
    torch.manual_seed(2)
    set_rng_state(state)
    assert torch.equal(torch.rand(2), x)
