"""Distributed data-parallel helpers on torch.distributed (torchrun semantics).

A process is a DDP rank when torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR,
MASTER_PORT) is set. `mirrordet train device=0,1` on a CUDA machine re-launches itself through
``python -m torch.distributed.run`` with one process per listed GPU; an external
``torchrun --nproc_per_node N -m mirrordet train ...`` works the same way (gloo on CPU, NCCL on GPU).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.distributed as dist

from mirrordet.utils.errors import ConfigError


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: rank -1 / world 1 when not distributed."""

    rank: int = -1
    local_rank: int = -1
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank in (-1, 0)


def dist_info() -> DistInfo:
    """Read torchrun's environment variables."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or "RANK" not in os.environ:
        return DistInfo()
    return DistInfo(int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", os.environ["RANK"])), world)


def init_distributed(info: DistInfo, device: torch.device) -> torch.device:
    """Join the process group (NCCL for CUDA, gloo for CPU); returns this rank's device."""
    if not info.enabled:
        return device
    if device.type == "cuda":
        if torch.cuda.device_count() <= info.local_rank:
            raise ConfigError(f"rank {info.rank} needs CUDA device {info.local_rank} but only "
                              f"{torch.cuda.device_count()} are visible")
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        backend = "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return device


def cleanup() -> None:
    """Leave the process group (safe to call when not distributed)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def broadcast_object(obj: Any, info: DistInfo) -> Any:
    """Rank 0's ``obj`` on every rank."""
    if not info.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_true(flag: bool, info: DistInfo, device: torch.device) -> bool:
    """True only when ``flag`` is True on every rank (so all ranks take the same branch)."""
    if not info.enabled:
        return flag
    t = torch.tensor([1 if flag else 0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return bool(t.item())


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def weights_checksum(model: torch.nn.Module) -> float:
    """A float summary of every parameter and buffer (equal across ranks when weights are equal)."""
    with torch.no_grad():
        return float(sum(t.double().sum() * (i + 1) for i, t in enumerate(model.state_dict().values())
                         if t.is_floating_point()))


def checksums_agree(model: torch.nn.Module, info: DistInfo, device: torch.device) -> list[float]:
    """Gather every rank's :func:`weights_checksum` (rank order).

    Parameters stay in sync through DDP's gradient all-reduce; buffers (BatchNorm running
    statistics) are broadcast from rank 0 at the start of every forward, so after the last
    forward each rank holds its own: they are broadcast from rank 0 once more before comparing.
    """
    if info.enabled:
        with torch.no_grad():
            for b in model.buffers():
                dist.broadcast(b, src=0)
    value = weights_checksum(model)
    if not info.enabled:
        return [value]
    out = [torch.zeros(1, dtype=torch.float64, device=device) for _ in range(info.world_size)]
    dist.all_gather(out, torch.tensor([value], dtype=torch.float64, device=device))
    return [float(t.item()) for t in out]


def cuda_device_list(device: Any) -> list[int]:
    """CUDA indices of a ``device`` setting like ``"0,1"`` (empty for cpu / a single device)."""
    if device is None or isinstance(device, bool):
        return []
    parts = [p.strip() for p in str(device).split(",") if p.strip()]
    return [int(p) for p in parts] if len(parts) > 1 and all(p.isdigit() for p in parts) else []


def launch(argv: Sequence[str], devices: list[int]) -> int:
    """Re-run ``mirrordet <argv>`` under ``torch.distributed.run`` with one process per device."""
    if not torch.cuda.is_available() or torch.cuda.device_count() < len(devices):
        raise ConfigError(f"device={','.join(map(str, devices))} needs {len(devices)} CUDA devices; "
                          f"{torch.cuda.device_count()} visible (use device=cpu, or torchrun for CPU DDP)")
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ",".join(map(str, devices))}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={len(devices)}",
           "-m", "mirrordet", *argv]
    return subprocess.run(cmd, env=env).returncode
