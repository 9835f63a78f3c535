"""What differs between tasks inside the one trainer: data, loss, validator, batch targets.

The task comes from the model's head (``ModelGraph.task``), never from a per-model code path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from mirrordet.data.dataset import DetectionDataset
from mirrordet.data.dataset_seg import SegmentationDataset
from mirrordet.data.loader import build_dataloader
from mirrordet.engine.validator import METRIC_KEYS, DetectionValidator
from mirrordet.engine.validator_cls import CLS_METRIC_KEYS, ClassificationValidator
from mirrordet.engine.validator_seg import MASK_METRIC_KEYS, SegmentationValidator
from mirrordet.losses.base import Loss
from mirrordet.nn.graph import ModelGraph
from mirrordet.utils.errors import ConfigError, DatasetError


def criterion(model: ModelGraph, cfg: Mapping[str, Any], world_size: int = 1) -> Loss:
    """The loss of the model's head family (``head.loss`` -> mirrordet.losses.registry)."""
    from mirrordet.losses.registry import build_loss
    from mirrordet.utils.errors import RegistryError

    head = model.head
    try:
        return build_loss(head, cfg, world_size)
    except RegistryError as e:
        raise ConfigError(f"no loss for a {type(head).__name__} head in the {model.task} task: {e}") from None


def plot_training_labels(task: Any, dataset: Any, names: Mapping[int, str], path: Path) -> None:
    """labels.png of the training split, for tasks whose labels are boxes (nothing otherwise)."""
    arrays = task.label_arrays(dataset)
    if arrays is not None:
        from mirrordet.plotting.labels import plot_labels

        plot_labels(*arrays, names, path)


class DetectTask:
    """Detection: mosaic-augmented YOLO/COCO data, the head's loss, the COCO validator."""

    name = "detect"
    metric_keys = METRIC_KEYS
    dataset_kind: type[DetectionDataset] | None = None  # the dataset class (None: the detection dataset)

    def build_split(self, data: Mapping[str, Any], split: str, cfg: Mapping[str, Any], imgsz: int, augment: bool,
                    batch: int, rank: int = -1, world_size: int = 1, stride: int = 32,
                    resize: tuple[int, int] | None = None) -> tuple[Any, Any]:
        """(dataset, loader) of ``split``; ``resize`` (validation): a model's own resize rule, in rectangular
        batches (:meth:`~mirrordet.data.dataset.DetectionDataset.set_rect`)."""
        from mirrordet.data.dataset import build_detection_dataset

        dataset = build_detection_dataset(data, split, imgsz, augment=augment, hyp=cfg,
                                          fraction=cfg["fraction"] if augment else 1.0, cache=cfg["cache"],
                                          seed=cfg["seed"], kind=self.dataset_kind)
        if (cfg["rect"] or resize is not None) and not augment:  # images of similar shape, padded to the batch's
            dataset.set_rect(batch, stride, resize)
        return dataset, build_dataloader(dataset, batch, cfg["workers"], shuffle=augment, seed=cfg["seed"],
                                         rank=rank, world_size=world_size)

    def validator(self, dataset: Any, loader: Any, cfg: Mapping[str, Any], save_dir: Path | None,
                  conf: float = 0.001) -> DetectionValidator:
        return DetectionValidator(dataset, loader, conf=conf, iou=cfg["iou"], max_det=cfg["max_det"], save_dir=save_dir)

    def targets(self, batch: Mapping[str, Any], img: torch.Tensor, device: torch.device) -> dict[str, torch.Tensor]:
        out = {k: batch[k].to(device) for k in ("cls", "bboxes", "batch_idx")}
        out["img"] = img
        return out

    def label_arrays(self, dataset: Any) -> tuple[np.ndarray, np.ndarray]:
        """(cls [N], boxes [N, 4] normalized xywh) of every training box, for labels.png."""
        cls = np.concatenate([np.asarray(r["cls"]).reshape(-1) for r in dataset.records] or [np.zeros(0)])
        boxes = np.concatenate([np.asarray(r["bboxes"]).reshape(-1, 4) for r in dataset.records] or [np.zeros((0, 4))])
        return cls, boxes


class SegmentTask(DetectTask):
    """Instance segmentation: the detect task's data with instance masks, the YOLO-seg loss, box + mask AP."""

    name = "segment"
    metric_keys = METRIC_KEYS + MASK_METRIC_KEYS
    dataset_kind = SegmentationDataset

    def validator(self, dataset: Any, loader: Any, cfg: Mapping[str, Any], save_dir: Path | None,
                  conf: float = 0.001) -> SegmentationValidator:
        return SegmentationValidator(dataset, loader, conf=conf, iou=cfg["iou"], max_det=cfg["max_det"],
                                     save_dir=save_dir)

    def targets(self, batch: Mapping[str, Any], img: torch.Tensor, device: torch.device) -> dict[str, torch.Tensor]:
        return {**super().targets(batch, img, device), "masks": batch["masks"].to(device)}


class ClassifyTask:
    """Classification: ImageFolder / CIFAR data, cross-entropy, the top-1/top-5 validator."""

    name = "classify"
    metric_keys = CLS_METRIC_KEYS

    def build_split(self, data: Mapping[str, Any], split: str, cfg: Mapping[str, Any], imgsz: int, augment: bool,
                    batch: int, rank: int = -1, world_size: int = 1, stride: int = 32) -> tuple[Any, Any]:
        from mirrordet.data.classification import build_classification_dataset

        dataset = build_classification_dataset(data, split, imgsz, augment, hyp=cfg,
                                               fraction=cfg["fraction"] if augment else 1.0, seed=cfg["seed"])
        return dataset, build_dataloader(dataset, batch, cfg["workers"], shuffle=augment, seed=cfg["seed"],
                                         rank=rank, world_size=world_size)

    def validator(self, dataset: Any, loader: Any, cfg: Mapping[str, Any], save_dir: Path | None,
                  conf: float = 0.0) -> ClassificationValidator:
        return ClassificationValidator(dataset, loader, save_dir=save_dir)

    def targets(self, batch: Mapping[str, Any], img: torch.Tensor, device: torch.device) -> dict[str, torch.Tensor]:
        return {"cls": batch["cls"].to(device)}

    def label_arrays(self, dataset: Any) -> tuple[np.ndarray, np.ndarray] | None:
        return None


TASKS = {"detect": DetectTask, "segment": SegmentTask, "classify": ClassifyTask}


def task_for(model: ModelGraph, data: Mapping[str, Any]) -> DetectTask | ClassifyTask:
    """The task of ``model``'s head, checked against the dataset's task (a detector may also train on
    segmentation data: its polygons give the boxes)."""
    if model.task not in TASKS:
        raise ConfigError(f"{model.source}: the last layer ({type(model.head).__name__}) is not a head of a "
                          f"trainable task ({', '.join(TASKS)})")
    data_task = data.get("task", "detect")
    if data_task == "detect" and model.task == "segment" and not data.get("task_stated", True):
        data_task = "segment"  # a YOLO-format YAML without `task:` (as Ultralytics' coco8-seg.yaml): the model decides
    if data_task != model.task and (data_task, model.task) != ("segment", "detect"):
        raise DatasetError(f"{data.get('yaml_file')} is a {data_task} dataset but {Path(model.source).name} is a "
                           f"{model.task} model")
    return TASKS[model.task]()
