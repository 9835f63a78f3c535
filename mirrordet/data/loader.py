"""DataLoader builder: seeded shuffling and workers, DistributedSampler for multi-process training.

The order of an epoch is a pure function of (seed, epoch): :class:`EpochShuffleSampler` (one
process) or DistributedSampler (DDP) draw it from a generator of their own, seeded from the epoch
alone, so a resumed run sees exactly the order an uninterrupted one saw, whatever the worker
count. The loader's own generator only seeds the worker processes.
"""

from __future__ import annotations

import os
import random
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from mirrordet.data.collate import collate_detection


def seed_worker(worker_id: int) -> None:
    """``worker_init_fn``: seed ``random`` and numpy from the worker's torch seed (which the loader's
    seeded generator determines). Detection datasets draw augmentation from per-sample generators."""
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


class EpochShuffleSampler(Sampler[int]):
    """Random order of ``range(n)`` that depends on (seed, epoch) only; call :meth:`set_epoch`.

    The permutation of epoch ``e`` is ``torch.randperm(n)`` from a generator seeded with
    ``seed + e``, independent of how many iterators or worker processes came before it.
    """

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed, self.epoch = int(n), int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        """Select the order of ``epoch`` (before iterating the loader)."""
        self.epoch = int(epoch)

    def __iter__(self):
        g = torch.Generator()
        g.manual_seed(self.seed + self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())

    def __len__(self) -> int:
        return self.n


def build_dataloader(
    dataset: Dataset,
    batch: int,
    workers: int,
    shuffle: bool,
    seed: int,
    rank: int = -1,
    world_size: int = 1,
) -> DataLoader:
    """DataLoader over ``dataset`` with reproducible order and augmentation.

    Args:
        dataset: a dataset; its ``collate_fn`` attribute is used when present, else
            ``collate_detection``.
        batch: batch size of this process.
        workers: worker processes (capped at the CPU count; 0 = load in the main process).
        shuffle: shuffle every epoch.
        seed: seeds the shuffling and the worker seeds.
        rank: this process's rank (-1 = not distributed).
        world_size: number of processes; > 1 uses a DistributedSampler.

    With ``shuffle``, call ``loader.sampler.set_epoch(epoch)`` before every epoch (both samplers
    have it); the order then depends on (seed, epoch) only.

    Returns:
        DataLoader with pin_memory only when CUDA is available and persistent workers when
        workers > 0.
    """
    workers = max(0, min(int(workers), os.cpu_count() or 1))
    sampler: Sampler[int] | None = None
    if world_size > 1:
        sampler = DistributedSampler(
            dataset, num_replicas=world_size, rank=max(rank, 0), shuffle=shuffle, seed=seed
        )
    elif shuffle:
        sampler = EpochShuffleSampler(len(dataset), seed)
    generator = torch.Generator()
    generator.manual_seed(seed + max(rank, 0))
    collate: Any = getattr(dataset, "collate_fn", None) or collate_detection
    return DataLoader(
        dataset,
        batch_size=batch,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate,
        pin_memory=torch.cuda.is_available(),
        drop_last=False,
        worker_init_fn=seed_worker,
        generator=generator,
        persistent_workers=workers > 0,
    )


def set_loader_epoch(loader: DataLoader, epoch: int) -> None:
    """Select the shuffle order of ``epoch`` for a loader made by :func:`build_dataloader`."""
    if isinstance(loader.sampler, (EpochShuffleSampler, DistributedSampler)):
        loader.sampler.set_epoch(epoch)
