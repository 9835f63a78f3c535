"""Detection dataset: per-image records -> augmented, letterboxed samples (the sample contract).

``__getitem__(i)`` returns::

    img:           torch.uint8 [3, S, S] RGB (S = imgsz)
    cls:           torch.float32 [n, 1] class indices 0..nc-1
    bboxes:        torch.float32 [n, 4] normalized xywh relative to ``img``
    im_file:       str
    ori_shape:     (h0, w0) of the image file
    resized_shape: (S, S)
    ratio_pad:     ((gain_h, gain_w), (pad_w, pad_h)): original pixel -> img pixel is x * gain + pad.
                   Exact for augment=False; for augmented samples it only describes the
                   letterbox step (mosaic samples carry ((1, 1), (0, 0))).

Training (augment=True): mosaic (probability ``mosaic``) or letterbox, then random affine
(``degrees``, ``translate``, ``aug_scale``, ``shear``), mixup (probability ``mixup``: blended with another
sample that went through the same steps, the boxes of both kept), optional Albumentations pixel transforms
(``albumentations``), HSV jitter, flips. Validation
(augment=False): resize the longer side to S, pad to S x S: deterministic.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from mirrordet.data.augment_affine import random_affine
from mirrordet.data.coco import load_coco_records
from mirrordet.data.image_files import imread
from mirrordet.data.labels import load_yolo_records
from mirrordet.data.mosaic import mosaic4
from mirrordet.data.preprocess import resized_long_side, stride_multiple
from mirrordet.data.transforms import (
    AUGMENT_DEFAULTS,
    RatioPad,
    apply_ratio_pad,
    clip_and_filter,
    compose_ratio_pad,
    flip_lr,
    flip_ud,
    hsv_jitter,
    letterbox,
    resize_long_side,
)
from mirrordet.ops.boxes import xywhn2xyxy, xyxy2xywhn
from mirrordet.utils.errors import DatasetError
from mirrordet.utils.log import LOGGER


class DetectionDataset(Dataset):
    """Images plus boxes from per-image records (YOLO txt, COCO JSON or Pascal VOC XML: labels.py, coco.py, voc.py).

    Args:
        records: dicts with ``im_file``, ``shape`` (h, w), ``cls`` [n] int, ``bboxes`` [n, 4]
            normalized xywh, optional ``image_id``.
        imgsz: square network input side S.
        augment: training augmentation (True) or deterministic letterbox only (False).
        hyp: augmentation settings (hsv_h, hsv_s, hsv_v, degrees, translate, aug_scale, shear,
            fliplr, flipud, mosaic); missing keys take ``AUGMENT_DEFAULTS``; other keys ignored.
        names: class names {0: name, ...} (or a list).
        cache: ``True`` / ``"ram"``: keep the resized images in RAM (decoded once, at construction);
            ``"disk"``: write each resized image once as ``<image file>.<imgsz>.npy`` beside it and read that
            instead of decoding (rewritten when the image is newer; an unwritable folder falls back to decoding).
        category_ids: class k -> dataset category id (COCO); None = range(nc).
        seed: base seed of the augmentation: sample i of epoch e draws from a generator seeded with
            (seed, e, i), so augmentation is the same for any worker count and after a resume.
        annotations_file: the COCO JSON of this split, when the data came from one.

    Attributes:
        source_format: ``"yolo"``, ``"coco"`` or ``"voc"``: the label format the records came from (set by
            :func:`build_detection_dataset`; VOC data is also scored with the VOC metric).
    """

    source_format: str = "yolo"
    segments: bool = False  # its records need instance outlines (the segment task's subclass)

    def __init__(
        self,
        records: Sequence[dict[str, Any]],
        imgsz: int,
        augment: bool,
        hyp: Mapping[str, Any] | None = None,
        names: Mapping[int, str] | Sequence[str] | None = None,
        cache: bool | str = False,
        category_ids: Sequence[int] | None = None,
        seed: int = 0,
        annotations_file: str | Path | None = None,
    ) -> None:
        self.records = list(records)
        self.imgsz = int(imgsz)
        self.augment = bool(augment)
        hyp = hyp or {}
        self.hyp = {k: float(hyp.get(k, v)) for k, v in AUGMENT_DEFAULTS.items()}
        self.pixel_extra = None  # optional Albumentations transforms (data/albumentations_hook.py)
        if self.augment and hyp.get("albumentations"):
            from mirrordet.data.albumentations_hook import build_albumentations

            self.pixel_extra = build_albumentations()
        if names is None:
            nc = 1 + max((int(c) for r in self.records for c in r["cls"]), default=0)
            names = {i: str(i) for i in range(nc)}
        self.names = dict(enumerate(names)) if isinstance(names, (list, tuple)) else dict(names)
        self.nc = len(self.names)
        self.category_ids = list(category_ids) if category_ids is not None else list(range(self.nc))
        self.annotations_file = Path(annotations_file) if annotations_file else None
        # Shared-memory flag: close_mosaic() reaches DataLoader workers, persistent ones included.
        self._mosaic = torch.tensor([self.hyp["mosaic"] if self.augment else 0.0]).share_memory_()
        self.seed = int(seed)
        self._epoch = torch.zeros(1, dtype=torch.long).share_memory_()  # set_epoch() reaches workers too
        self._images: list[np.ndarray | None] = [None] * len(self.records)
        self._disk: list[Path | None] = [None] * len(self.records)
        self._rect: list[tuple[int, int]] = []  # per-sample (H, W) of rectangular validation batches (set_rect)
        self._long_sides: list[float] | None = None  # per-sample long side under a model's resize rule (set_rect)
        if cache == "disk":
            self._cache_to_disk()
        elif cache:
            self._cache_images()

    # ---- records and ground truth ------------------------------------------------------------
    @property
    def labels(self) -> list[dict[str, Any]]:
        """The per-image records (see class docstring)."""
        return self.records

    def __len__(self) -> int:
        return len(self.records)

    def image_id(self, i: int) -> int:
        """COCO image id of sample ``i`` (its index for YOLO-format data)."""
        return int(self.records[i].get("image_id", i))

    def ground_truth(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Targets of image ``i`` in its original pixels: (cls int64 [n], boxes float64 [n, 4] xyxy)."""
        r = self.records[i]
        h, w = r["shape"]
        boxes = xywhn2xyxy(np.asarray(r["bboxes"], np.float64).reshape(-1, 4), w, h)
        return np.asarray(r["cls"], np.int64).copy(), boxes

    def crowd_boxes(self, i: int) -> np.ndarray:
        """COCO crowd regions (``iscrowd=1``, never training targets) of image ``i``: float64 [m, 4] xyxy
        original pixels (empty for YOLO data). Validation scores against the COCO file's own records, where
        they are iscrowd=1 annotations (engine.validator.ground_truth_of)."""
        r = self.records[i]
        h, w = r["shape"]
        crowd = np.asarray(r.get("crowd", np.zeros((0, 4))), np.float64).reshape(-1, 4)
        return xywhn2xyxy(crowd, w, h)

    # ---- augmentation control ----------------------------------------------------------------
    def close_mosaic(self) -> None:
        """Turn mosaic off (also inside running DataLoader workers) for the final epochs."""
        self._mosaic.fill_(0.0)

    @property
    def mosaic(self) -> float:
        """Current mosaic probability."""
        return float(self._mosaic[0])

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation stream of ``epoch`` (call before iterating the loader)."""
        self._epoch.fill_(int(epoch))

    def sample_rng(self, i: int) -> np.random.Generator:
        """The augmentation generator of sample ``i`` in the current epoch."""
        return np.random.default_rng([self.seed, int(self._epoch[0]), int(i)])

    # ---- loading -----------------------------------------------------------------------------
    def _read(self, i: int) -> np.ndarray:
        img = imread(self.records[i]["im_file"])
        if img is None:
            raise DatasetError(
                f"image {self.records[i]['im_file']} became unreadable after the label check; "
                "delete the label cache (.mirrordet.cache) to re-verify the split"
            )
        return img

    def _cache_images(self) -> None:
        with ThreadPoolExecutor(8) as pool:
            imgs = list(pool.map(lambda i: resize_long_side(self._read(i), self.imgsz)[0], range(len(self))))
        self._images = imgs
        LOGGER.info(f"cached {len(imgs)} images ({sum(im.nbytes for im in imgs) / 2**20:.1f} MiB)")

    def set_rect(self, batch: int, stride: int, resize: tuple[int, int] | None = None) -> None:
        """Rectangular batches (validation only): the records sorted by aspect ratio, and every image letterboxed to
        its batch's shape: the longer side ``imgsz``, the other the batch's widest need, both stride multiples. A
        loader over this dataset must keep the order and use ``batch`` (as the validation loader does).

        ``resize`` = (min_size, max_size), a model's own resize rule (torchvision's detection transform): each image
        is scaled so that its shorter side is ``min_size`` unless its longer side would pass ``max_size``, instead of
        to ``imgsz``; the batch's shape is the smallest stride-multiple canvas holding all its images, which are
        padded, not scaled, into it. The image caches (sized to ``imgsz``) are not used then.
        """
        if self.augment:
            raise DatasetError("rectangular batches are for validation (augment=False)")
        order = sorted(range(len(self)), key=lambda i: self.records[i]["shape"][0] / self.records[i]["shape"][1])
        self.records = [self.records[i] for i in order]
        self._images = [self._images[i] for i in order]
        self._disk = [self._disk[i] for i in order]
        self._rect = []
        self._long_sides = None if resize is None else [resized_long_side(*r["shape"], *resize) for r in self.records]
        for start in range(0, len(self), batch):
            records = self.records[start:start + batch]
            if self._long_sides is None:
                ratios = [r["shape"][0] / r["shape"][1] for r in records]  # h / w
                lo, hi = min(ratios), max(ratios)
                rel = (hi, 1.0) if hi < 1 else (1.0, 1 / lo) if lo > 1 else (1.0, 1.0)
                shape = tuple(stride_multiple(v * self.imgsz, stride) for v in rel)
            else:  # each image as resize_long_side sizes it, the canvas holding the largest of each side
                hs, ws = [], []
                for r, long in zip(records, self._long_sides[start:start + batch]):
                    gain = long / max(r["shape"])
                    hs.append(round(r["shape"][0] * gain))
                    ws.append(round(r["shape"][1] * gain))
                shape = (stride_multiple(max(hs), stride), stride_multiple(max(ws), stride))
            self._rect += [shape] * len(records)

    @property
    def pad_only(self) -> bool:
        """Images are padded, not scaled, into their batch's shape (a model's resize rule: :meth:`set_rect`)."""
        return self._long_sides is not None

    def _npy(self, i: int) -> Path:
        return Path(f"{self.records[i]['im_file']}.{self.imgsz}.npy")

    def _cache_to_disk(self) -> None:
        """``cache="disk"``: the resized images as .npy files beside the images (written when missing or stale)."""
        def one(i: int) -> tuple[Path | None, bool]:
            npy, src = self._npy(i), Path(self.records[i]["im_file"])
            try:
                if npy.is_file() and npy.stat().st_mtime >= src.stat().st_mtime:
                    return npy, False
                tmp = npy.with_name(f".{npy.name}.{os.getpid()}.tmp")
                with open(tmp, "wb") as f:
                    np.save(f, resize_long_side(self._read(i), self.imgsz)[0])
                os.replace(tmp, npy)
                return npy, True
            except OSError as e:
                LOGGER.warning(f"cache=disk: cannot write {npy} ({e.strerror or e}); decoding {src.name} instead")
                return None, False

        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(one, range(len(self))))
        self._disk = [p for p, _ in results]
        LOGGER.info(f"cache=disk: {sum(w for _, w in results)} .npy files written, "
                    f"{sum(p is not None and not w for p, w in results)} reused")

    def load_resized(self, i: int) -> tuple[np.ndarray, tuple[int, int], tuple[float, float], np.ndarray]:
        """Image ``i`` with its longer side at S, its original (h0, w0), gains (h, w) and boxes [n, 4]
        xyxy pixels of the resized image."""
        r = self.records[i]
        h0, w0 = r["shape"]
        if self._long_sides is not None:  # a model's resize rule: each image at its own size, not cached
            img, _ = resize_long_side(self._read(i), self._long_sides[i])
        else:
            img = self._images[i]
            if img is None and self._disk[i] is not None:
                img = np.load(self._disk[i], allow_pickle=False)
            if img is None:
                img, _ = resize_long_side(self._read(i), self.imgsz)
        gains = (img.shape[0] / h0, img.shape[1] / w0)
        boxes = xywhn2xyxy(np.asarray(r["bboxes"], np.float32).reshape(-1, 4), img.shape[1], img.shape[0])
        return img, (h0, w0), gains, boxes

    def __getitem__(self, i: int) -> dict[str, Any]:
        s = self.imgsz
        img, ori_shape, gains, boxes = self.load_resized(i)
        cls = np.asarray(self.records[i]["cls"], np.int64)
        h, w = self._rect[i] if self._rect else (s, s)
        if not self.augment:
            img, rp = letterbox(img, (h, w), scaleup=not self.pad_only)
            boxes, ratio_pad = apply_ratio_pad(boxes, rp, (h, w)), compose_ratio_pad(gains, rp)
        else:
            img, boxes, cls, ratio_pad = self._augment(i, img, gains, boxes, cls)
        boxes, cls = clip_and_filter(boxes, cls, (h, w))
        rgb = np.ascontiguousarray(img[:, :, ::-1].transpose(2, 0, 1))
        return {
            "img": torch.from_numpy(rgb),
            "cls": torch.from_numpy(cls.astype(np.float32).reshape(-1, 1)),
            "bboxes": torch.from_numpy(xyxy2xywhn(boxes.astype(np.float32), w, h).reshape(-1, 4)),
            "im_file": self.records[i]["im_file"],
            "ori_shape": tuple(ori_shape),
            "resized_shape": (h, w),
            "ratio_pad": ratio_pad,
        }

    def _geometric(self, img: np.ndarray, gains: tuple[float, float], boxes: np.ndarray, cls: np.ndarray,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, RatioPad]:
        """Mosaic (probability ``mosaic``) or letterbox, then the random affine: (img [S, S, 3], boxes, cls, ratio_pad)."""
        s, hyp = self.imgsz, self.hyp
        affine = dict(
            degrees=hyp["degrees"], translate=hyp["translate"], scale=hyp["aug_scale"], shear=hyp["shear"]
        )
        if len(self) > 0 and rng.random() < self.mosaic:
            others = [int(j) for j in rng.integers(0, len(self), 3)]
            parts = [(img, boxes, cls)]
            for j in others:
                im_j, _, _, b_j = self.load_resized(j)
                parts.append((im_j, b_j, np.asarray(self.records[j]["cls"], np.int64)))
            canvas, boxes, cls = mosaic4(*zip(*parts), size=s, rng=rng)
            img, boxes, cls = random_affine(canvas, boxes, cls, rng, out_shape=(s, s), **affine)
            return img, boxes, cls, ((1.0, 1.0), (0.0, 0.0))
        img, rp = letterbox(img, s)
        boxes, ratio_pad = apply_ratio_pad(boxes, rp, (s, s)), compose_ratio_pad(gains, rp)
        img, boxes, cls = random_affine(img, boxes, cls, rng, out_shape=(s, s), **affine)
        return img, boxes, cls, ratio_pad

    def _augment(
        self, i: int, img: np.ndarray, gains: tuple[float, float], boxes: np.ndarray, cls: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[tuple[float, float], tuple[float, float]]]:
        """Train-time pipeline of sample ``i``: (img [S, S, 3], boxes [m, 4] xyxy px, cls [m], ratio_pad)."""
        hyp, rng = self.hyp, self.sample_rng(i)
        img, boxes, cls, ratio_pad = self._geometric(img, gains, boxes, cls, rng)
        if hyp["mixup"] > 0 and rng.random() < hyp["mixup"]:  # no draw at mixup=0: earlier runs stay bit-identical
            j = int(rng.integers(0, len(self)))
            im_j, _, gains_j, b_j = self.load_resized(j)
            im_j, b_j, c_j, _ = self._geometric(im_j, gains_j, b_j, np.asarray(self.records[j]["cls"], np.int64), rng)
            r = rng.beta(32.0, 32.0)  # mixup ratio around 0.5 (Zhang et al. 2018)
            img = (img.astype(np.float32) * r + im_j.astype(np.float32) * (1 - r)).astype(np.uint8)
            boxes, cls = np.concatenate([boxes, b_j]), np.concatenate([cls, c_j])
        if self.pixel_extra is not None:  # no draw without it: earlier runs stay bit-identical
            img = self.pixel_extra(img, int(rng.integers(2**31)))
        img = hsv_jitter(img, hyp["hsv_h"], hyp["hsv_s"], hyp["hsv_v"], rng)
        if rng.random() < hyp["fliplr"]:
            img, boxes = flip_lr(img, boxes)
        if rng.random() < hyp["flipud"]:
            img, boxes = flip_ud(img, boxes)
        return img, boxes, cls, ratio_pad


def build_detection_dataset(
    data: Mapping[str, Any],
    split: str,
    imgsz: int,
    augment: bool,
    hyp: Mapping[str, Any] | None = None,
    fraction: float = 1.0,
    cache: bool | str = False,
    seed: int = 0,
    kind: type[DetectionDataset] | None = None,
) -> DetectionDataset:
    """Build the dataset of one split of a loaded dataset YAML (``load_dataset_yaml``).

    YOLO txt labels for folder / .txt / list splits, COCO JSON for ``{images, annotations}`` splits, Pascal VOC
    XML for ``{voc: [ImageSets id lists]}`` splits.

    Args:
        data: the dict returned by ``load_dataset_yaml``.
        split: "train", "val" or "test".
        imgsz: square network input side.
        augment: training augmentation on/off.
        hyp: augmentation settings (see DetectionDataset).
        fraction: use the first ``fraction`` of the split's images (0 < fraction <= 1).
        cache: keep resized images in RAM (True / "ram") or as .npy files beside the images ("disk").
        seed: augmentation seed.
        kind: the dataset class (default :class:`DetectionDataset`); one whose ``segments`` is True (the
            segment task's :class:`~mirrordet.data.dataset_seg.SegmentationDataset`) reads instance outlines too,
            from YOLO-seg polygons or COCO segmentations.

    Raises:
        DatasetError: missing or empty split, every image corrupt, no usable box at all, or VOC data asked for
            masks.
    """
    kind = kind or DetectionDataset
    segments = kind.segments
    yaml_file = data.get("yaml_file", "dataset YAML")
    src = data.get(split)
    if src is None:
        raise DatasetError(f"{yaml_file}: no `{split}` split defined")
    if not 0 < fraction <= 1:
        raise DatasetError(f"fraction must be in (0, 1], got {fraction}")
    nc, prefix = int(data["nc"]), f"{split}: "
    category_ids, ann = None, None
    fmt = "voc" if isinstance(src, Mapping) and "voc" in src else "coco" if isinstance(src, Mapping) else "yolo"
    if fmt == "voc" and segments:
        raise DatasetError(f"{yaml_file}: Pascal VOC detection data has no instance outlines for the segment task")
    if fmt == "voc":
        from mirrordet.data.voc import load_voc_records

        records, report = load_voc_records(src["voc"], [data["names"][k] for k in sorted(data["names"])], prefix=prefix)
    elif fmt == "coco":
        records, category_ids, report = load_coco_records(
            src["images"], src["annotations"], nc=nc, prefix=prefix, segments=segments
        )
        ann = src["annotations"]
    else:
        records, report = load_yolo_records(src, nc, root=data.get("path"), prefix=prefix, segments=segments)
    where = f"{yaml_file}: split `{split}`"
    if report.images == 0:
        raise DatasetError(f"{where} has no images ({src})")
    if not records:
        raise DatasetError(
            f"{where}: all {report.images} images are corrupt or missing, e.g. {report.corrupt[:3]}"
        )
    if report.instances == 0:
        why = (
            f"all {report.n_bad_rows} label rows failed the checks ({', '.join(report.bad_rows)})"
            if report.n_bad_rows
            else "no labels found (YOLO labels go in a 'labels' folder beside 'images')"
        )
        raise DatasetError(f"{where}: {why}")
    if fraction < 1:
        records = records[: max(1, round(len(records) * fraction))]
    if augment and not segments and float((hyp or {}).get("copy_paste", 0.0)) > 0:
        LOGGER.warning(f"copy_paste={hyp['copy_paste']} needs instance masks: it applies to the segment task only, "
                       "so this detection run trains without it")
    dataset = kind(
        records,
        imgsz,
        augment,
        hyp,
        data.get("names"),
        cache=cache,
        category_ids=category_ids,
        seed=seed,
        annotations_file=ann,
    )
    dataset.source_format = fmt
    return dataset
