"""DataLoader: contract batches, seeded reproducibility, DDP sampler, close_mosaic reaching workers."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DistributedSampler

from mirrordet.data.collate import collate_detection
from mirrordet.data.dataset import DetectionDataset, build_detection_dataset
from mirrordet.data.loader import build_dataloader
from mirrordet.ops.boxes import xywh2xyxy

NAMES = {0: "circle", 1: "square", 2: "triangle", 3: "star"}


@pytest.fixture(scope="module")
def data(make_shapes) -> dict:
    return make_shapes(10, 4, 64)


def test_batches_match_the_contract(data) -> None:
    ds = build_detection_dataset(data, "train", 64, augment=True, hyp={})
    loader = build_dataloader(ds, batch=4, workers=0, shuffle=True, seed=0)
    assert loader.pin_memory == torch.cuda.is_available()
    batches = list(loader)
    assert [b["img"].shape[0] for b in batches] == [4, 4, 2]
    for b in batches:
        B = b["img"].shape[0]
        assert b["img"].dtype == torch.uint8 and b["img"].shape == (B, 3, 64, 64)
        N = b["cls"].shape[0]
        assert b["cls"].shape == (N, 1) and b["bboxes"].shape == (N, 4) and b["batch_idx"].shape == (N,)
        assert b["batch_idx"].dtype == torch.float32 and b["cls"].dtype == torch.float32
        assert set(b["batch_idx"].long().tolist()) <= set(range(B))
        assert (b["batch_idx"].diff() >= 0).all()  # grouped by image
        xyxy = xywh2xyxy(b["bboxes"])
        assert (xyxy >= -1e-6).all() and (xyxy <= 1 + 1e-6).all()
        for key in ("im_file", "ori_shape", "resized_shape", "ratio_pad"):
            assert isinstance(b[key], list) and len(b[key]) == B


def test_collate_counts_boxes_per_image() -> None:
    def sample(n: int) -> dict:
        return {
            "img": torch.zeros(3, 8, 8, dtype=torch.uint8),
            "cls": torch.full((n, 1), float(n)),
            "bboxes": torch.rand(n, 4),
            "im_file": f"{n}.png",
            "ori_shape": (8, 8),
            "resized_shape": (8, 8),
            "ratio_pad": ((1.0, 1.0), (0.0, 0.0)),
        }

    b = collate_detection([sample(2), sample(0), sample(3)])
    assert b["img"].shape == (3, 3, 8, 8)
    assert b["batch_idx"].tolist() == [0, 0, 2, 2, 2]
    assert b["cls"].flatten().tolist() == [2, 2, 3, 3, 3]
    assert b["im_file"] == ["2.png", "0.png", "3.png"]


def _epoch(loader) -> list[torch.Tensor]:
    return [torch.cat([b["img"].flatten().float(), b["bboxes"].flatten()]) for b in loader]


@pytest.mark.parametrize("workers", [0, 2])
def test_same_seed_same_batches(data, workers: int) -> None:
    runs = []
    for seed in (3, 3, 4):
        ds = build_detection_dataset(data, "train", 64, augment=True, hyp={})
        runs.append(_epoch(build_dataloader(ds, batch=5, workers=workers, shuffle=True, seed=seed)))
    assert all(torch.equal(a, b) for a, b in zip(runs[0], runs[1]))
    assert not all(torch.equal(a, b) for a, b in zip(runs[0], runs[2]))


def test_distributed_sampler_partitions_the_data(data) -> None:
    ds = build_detection_dataset(data, "val", 64, augment=False, hyp={})
    files = []
    for rank in (0, 1):
        loader = build_dataloader(ds, batch=2, workers=0, shuffle=True, seed=0, rank=rank, world_size=2)
        assert isinstance(loader.sampler, DistributedSampler)
        loader.sampler.set_epoch(0)
        files.append([f for b in loader for f in b["im_file"]])
    assert len(files[0]) == len(files[1]) == 2
    assert sorted(files[0] + files[1]) == sorted(r["im_file"] for r in ds.labels)


class _MosaicProbe(DetectionDataset):
    """Returns the mosaic probability seen inside the worker process."""

    def __getitem__(self, i: int) -> float:
        return self.mosaic

    @staticmethod
    def collate_fn(items: list[float]) -> list[float]:
        return items


def test_close_mosaic_reaches_persistent_workers(data) -> None:
    ds = build_detection_dataset(data, "train", 64, augment=True, hyp={"mosaic": 1.0})
    probe = _MosaicProbe(ds.labels, 64, augment=True, hyp={"mosaic": 1.0}, names=NAMES)
    loader = build_dataloader(probe, batch=5, workers=1, shuffle=False, seed=0)
    assert loader.persistent_workers
    assert [v for b in loader for v in b] == [1.0] * 10
    probe.close_mosaic()
    assert [v for b in loader for v in b] == [0.0] * 10
