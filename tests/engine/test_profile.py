"""Latency and peak-memory helpers of `mirrordet compare`."""

import torch
from torch import nn

from mirrordet.engine.profile import interleaved_latency, latency_samples, measure_latency, peak_rss_mb


class Slow(nn.Module):
    """A model whose forward pass costs ``k`` 3x3 convolutions."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.convs = nn.Sequential(*(nn.Conv2d(3, 3, 3, padding=1) for _ in range(k)))

    def forward(self, x):
        return self.convs(x)


def test_latency_samples_and_median():
    model = Slow(1).train()
    times = latency_samples(model, 32, runs=7, warmup=1)
    assert len(times) == 7 and all(t > 0 for t in times)
    assert not model.training  # timed in eval mode
    assert measure_latency(model, 32, runs=3, warmup=0) > 0


def test_interleaved_latency_orders_models_by_cost():
    torch.manual_seed(0)
    small, big = Slow(1), Slow(40)
    fast, slow = interleaved_latency([small, big], [64, 64], runs=10, rounds=2, warmup=1)
    assert 0 < fast < slow


def test_peak_rss_is_reported():
    assert peak_rss_mb() > 10  # a Python process with torch loaded holds far more than 10 MiB
