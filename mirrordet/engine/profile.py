"""Cost measurements of a model or a process: single-image latency and peak memory."""

from __future__ import annotations

import statistics
import sys
import time
from typing import Sequence

import torch


@torch.inference_mode()
def latency_samples(model: torch.nn.Module, imgsz: int, device: str | torch.device = "cpu", runs: int = 30,
                    warmup: int = 5, ch: int = 3) -> list[float]:
    """Wall-clock times (ms) of ``runs`` forward passes of a single ``[1, ch, imgsz, imgsz]`` image.

    The model runs in eval mode under ``torch.inference_mode`` (for detectors: the head's decoded
    output, without NMS). ``warmup`` passes are run first and not timed; on CUDA every pass is
    synchronized. The model is left on ``device`` in eval mode.

    Args:
        model: the network (any module taking a ``[B, ch, H, W]`` float tensor).
        imgsz: square input size in pixels.
        device: where to run it.
        runs: timed passes.
        warmup: untimed passes before.
        ch: input channels.
    """
    device = torch.device(device)
    model = model.to(device).eval()
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(1, ch, imgsz, imgsz, generator=gen).to(device)
    cuda = device.type == "cuda"
    times = []
    for i in range(warmup + max(runs, 1)):
        if cuda:
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        model(x)
        if cuda:
            torch.cuda.synchronize(device)
        if i >= warmup:
            times.append(1000.0 * (time.perf_counter() - t0))
    return times


def measure_latency(model: torch.nn.Module, imgsz: int, device: str | torch.device = "cpu", runs: int = 30,
                    warmup: int = 5, ch: int = 3) -> float:
    """Median of :func:`latency_samples` (ms per single-image forward pass)."""
    return statistics.median(latency_samples(model, imgsz, device, runs, warmup, ch))


def interleaved_latency(models: Sequence[torch.nn.Module], imgsz: Sequence[int], device: str | torch.device = "cpu",
                        runs: int = 30, rounds: int = 5, warmup: int = 5) -> list[float]:
    """Median single-image latency (ms) of several models, measured in interleaved rounds.

    Each round times ``runs / rounds`` passes of every model in turn, so a change in machine load
    during the measurement affects all models alike instead of whichever happened to run then.

    Args:
        models: networks to time (each taking ``[1, model.ch or 3, s, s]``). imgsz: [M] input size of each.
        device: where to run them. runs: timed passes per model in total. rounds: interleaving rounds.
        warmup: untimed passes per model before the first round.
    """
    per_round = max(runs // max(rounds, 1), 1)
    samples: list[list[float]] = [[] for _ in models]
    for i, m in enumerate(models):
        latency_samples(m, imgsz[i], device, runs=1, warmup=warmup - 1, ch=getattr(m, "ch", 3))
    for _ in range(max(rounds, 1)):
        for i, m in enumerate(models):
            samples[i] += latency_samples(m, imgsz[i], device, runs=per_round, warmup=0, ch=getattr(m, "ch", 3))
    return [statistics.median(s) for s in samples]


def peak_rss_mb() -> float | None:
    """Peak resident set size of this process so far, in MiB (None where ``resource`` is unavailable)."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux
