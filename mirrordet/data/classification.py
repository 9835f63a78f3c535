"""Classification datasets: ImageFolder layouts and CIFAR pickle batches behind one Dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from mirrordet.data.cifar import is_cifar_batch, read_cifar_batch
from mirrordet.data.classify_transforms import center_crop_resize, pad_crop, random_resized_crop
from mirrordet.data.image_files import imread, is_image_file
from mirrordet.data.labels import verify_images
from mirrordet.data.transforms import hsv_jitter
from mirrordet.utils.errors import DatasetError
from mirrordet.utils.log import LOGGER


def image_folder_samples(root: Path, names: Mapping[int, str]) -> list[tuple[str, int]]:
    """``root/<class name>/*`` -> [(image path, class index)], classes matched to ``names`` by name.

    Raises:
        DatasetError: a sub-folder whose name is not a class, or no images at all.
    """
    index = {str(v): int(k) for k, v in names.items()}
    samples: list[tuple[str, int]] = []
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        if d.name not in index:
            raise DatasetError(f"{root}: folder {d.name!r} is not a class of the dataset YAML "
                               f"(names: {', '.join(index)})")
        samples += [(str(f), index[d.name]) for f in sorted(d.rglob("*")) if is_image_file(f)]
    return samples


def drop_unreadable(samples: Sequence[tuple[Any, int]], workers: int = 8
                    ) -> tuple[list[tuple[Any, int]], list[tuple[str, str]]]:
    """Decode every file sample up front (threads); in-memory array samples pass unchecked.

    Returns:
        (kept samples in their order, [(path, reason)] of the skipped ones: "missing"/"unreadable").
    """
    files = [str(src) for src, _ in samples if not isinstance(src, np.ndarray)]
    shapes = dict(zip(files, verify_images(files, workers)))
    kept, skipped = [], []
    for src, c in samples:
        reason = None if isinstance(src, np.ndarray) else shapes[str(src)]
        if isinstance(reason, str):
            skipped.append((str(src), reason))
        else:
            kept.append((src, c))
    return kept, skipped


def _skipped_line(split: str, skipped: Sequence[tuple[str, str]], total: int, show: int = 5) -> str:
    """One warning line: how many of ``total`` images were skipped, naming the first ``show``."""
    names = ", ".join(f"{Path(f).parent.name}/{Path(f).name} ({why})" for f, why in skipped[:show])
    more = f" ... and {len(skipped) - show} more" if len(skipped) > show else ""
    return f"{split}: skipped {len(skipped)} of {total} images that cannot be read: {names}{more}"


class ClassificationDataset(Dataset):
    """Images with one class label each.

    Args:
        samples: (image path, class) pairs and/or (BGR uint8 array [h, w, 3], class) pairs.
        imgsz: output side S. augment: training augmentation. hyp: fliplr, hsv_h/s/v.
        names: {class index: name}. seed: augmentation seed (per epoch and sample, as detection).

    Returns per item: ``{"img": uint8 [3, S, S] RGB, "cls": int64 scalar tensor, "im_file": str}``.
    """

    def __init__(self, samples: Sequence[tuple[Any, int]], imgsz: int, augment: bool,
                 hyp: Mapping[str, Any] | None = None, names: Mapping[int, str] | None = None, seed: int = 0) -> None:
        self.samples = list(samples)
        self.imgsz, self.augment, self.seed = int(imgsz), bool(augment), int(seed)
        hyp = hyp or {}
        self.hyp = {k: float(hyp.get(k, v)) for k, v in (("fliplr", 0.5), ("hsv_h", 0.015), ("hsv_s", 0.4),
                                                         ("hsv_v", 0.4))}
        self.names = dict(names or {})
        self.nc = len(self.names)
        self._epoch = torch.zeros(1, dtype=torch.long).share_memory_()

    def __len__(self) -> int:
        return len(self.samples)

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation stream of ``epoch``."""
        self._epoch.fill_(int(epoch))

    def labels(self) -> np.ndarray:
        """[N] class index of every sample."""
        return np.asarray([c for _, c in self.samples], dtype=np.int64)

    def _load(self, i: int) -> tuple[np.ndarray, str]:
        """Sample ``i`` -> (BGR uint8 [h, w, 3], name). Files were verified when the split was built,
        so a DatasetError here means the file changed since."""
        src, _ = self.samples[i]
        if isinstance(src, np.ndarray):
            return src, f"array{i}"
        img = imread(src)
        if img is None:
            raise DatasetError(f"cannot read image {src}")
        return img, str(src)

    def __getitem__(self, i: int) -> dict[str, Any]:
        img, name = self._load(i)
        s = self.imgsz
        if self.augment:
            rng = np.random.default_rng([self.seed, int(self._epoch[0]), i])
            small = max(img.shape[:2]) <= 64
            img = pad_crop(img, s, rng, pad=max(1, s // 8)) if small else random_resized_crop(img, s, rng)
            if rng.random() < self.hyp["fliplr"]:
                img = img[:, ::-1]
            img = hsv_jitter(np.ascontiguousarray(img), self.hyp["hsv_h"], self.hyp["hsv_s"], self.hyp["hsv_v"], rng,
                             hue_shift=True)  # torchvision semantics: hsv_h=0.5 reaches every hue
        else:
            img = center_crop_resize(img, s)
        rgb = np.ascontiguousarray(img[:, :, ::-1].transpose(2, 0, 1))
        return {"img": torch.from_numpy(rgb), "cls": torch.tensor(self.samples[i][1], dtype=torch.long), "im_file": name}

    @staticmethod
    def collate_fn(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """-> ``{"img": uint8 [B, 3, S, S], "cls": int64 [B], "im_file": list[str]}``."""
        return {"img": torch.stack([s["img"] for s in samples]), "cls": torch.stack([s["cls"] for s in samples]),
                "im_file": [s["im_file"] for s in samples]}


def _split_samples(src: Path, names: Mapping[int, str]) -> list[tuple[Any, int]]:
    if src.is_dir():
        return image_folder_samples(src, names)
    if is_cifar_batch(src):
        images, labels = read_cifar_batch(src)
        return list(zip(images, labels.tolist()))
    raise DatasetError(f"{src}: a classification split must be an ImageFolder directory or a CIFAR batch file")


def build_classification_dataset(data: Mapping[str, Any], split: str, imgsz: int, augment: bool,
                                 hyp: Mapping[str, Any] | None = None, fraction: float = 1.0,
                                 seed: int = 0) -> ClassificationDataset:
    """The dataset of one split of a loaded classification dataset YAML.

    Image files are decoded once up front; unreadable ones are skipped with one warning line.

    Raises:
        DatasetError: missing or empty split (also when no image is readable), labels outside ``names``.
    """
    yaml_file, src = data.get("yaml_file", "dataset YAML"), data.get(split)
    if src is None:
        raise DatasetError(f"{yaml_file}: no `{split}` split defined")
    names = dict(data["names"])
    samples: list[tuple[Any, int]] = []
    for p in src if isinstance(src, list) else [src]:
        samples += _split_samples(Path(p), names)
    if not samples:
        raise DatasetError(f"{yaml_file}: split `{split}` has no images")
    bad = sum(1 for _, c in samples if not 0 <= c < len(names))
    if bad:
        raise DatasetError(f"{yaml_file}: split `{split}` has {bad} labels outside 0..{len(names) - 1}")
    if fraction < 1:
        samples = samples[: max(1, round(len(samples) * fraction))]
    total = len(samples)
    samples, skipped = drop_unreadable(samples)
    if skipped:
        LOGGER.warning(_skipped_line(split, skipped, total))
    if not samples:
        raise DatasetError(f"{yaml_file}: split `{split}` has no images ({len(skipped)} unreadable skipped)")
    LOGGER.info(f"{split}: {len(samples)} images in {len(names)} classes")
    return ClassificationDataset(samples, imgsz, augment, hyp, names, seed)
