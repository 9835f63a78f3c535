"""DataLoader builder: seeded shuffling and workers, DistributedSampler for multi-process training."""

from __future__ import annotations

import os
import random
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from mirrordet.data.collate import collate_detection


def seed_worker(worker_id: int) -> None:
    """``worker_init_fn``: seed ``random`` and numpy from the worker's torch seed (which the loader's
    seeded generator determines). Detection datasets draw augmentation from per-sample generators."""
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


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
        world_size: number of processes; > 1 uses a DistributedSampler (call
            ``loader.sampler.set_epoch(epoch)`` every epoch).

    Returns:
        DataLoader with pin_memory only when CUDA is available and persistent workers when
        workers > 0.
    """
    workers = max(0, min(int(workers), os.cpu_count() or 1))
    sampler = None
    if world_size > 1:
        sampler = DistributedSampler(
            dataset, num_replicas=world_size, rank=max(rank, 0), shuffle=shuffle, seed=seed
        )
    generator = torch.Generator()
    generator.manual_seed(seed + max(rank, 0))
    collate: Any = getattr(dataset, "collate_fn", None) or collate_detection
    return DataLoader(
        dataset,
        batch_size=batch,
        shuffle=shuffle and sampler is None,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate,
        pin_memory=torch.cuda.is_available(),
        drop_last=False,
        worker_init_fn=seed_worker,
        generator=generator,
        persistent_workers=workers > 0,
    )
