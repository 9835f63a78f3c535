"""Segmentation dataset: the detection sample plus one instance-index map that follows every augmentation.

``__getitem__(i)`` returns the detection sample (data/dataset.py) plus::

    masks: torch.int16 [S, S] (or the rectangular batch's [H, W]): 0 background, k + 1 where the
           instance of row k of ``cls`` / ``bboxes`` is visible.

The map is rasterized from the record's polygons at the resized image (data/segments.py), then letterboxed,
mosaicked, warped, mixed, copy-pasted (``copy_paste``) and flipped together with the image
(data/augment_masks.py). The sample's boxes
are read back from the map, so a box always encloses exactly its instance's visible pixels; instances
with fewer than 4 visible pixels, or a box of 2 pixels or less, are dropped.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from mirrordet.data.augment_masks import letterbox_mask, offset_ids, random_affine_pair
from mirrordet.data.dataset import DetectionDataset
from mirrordet.data.mosaic import mosaic_canvas, mosaic_layout
from mirrordet.data.segments import boxes_from_index_map, index_map, relabel
from mirrordet.data.transforms import PAD_VALUE, RatioPad, compose_ratio_pad, flip_lr, flip_ud, hsv_jitter, letterbox
from mirrordet.ops.boxes import xyxy2xywhn


class SegmentationDataset(DetectionDataset):
    """Images, boxes and instance masks from records with ``segments`` (YOLO-seg txt or COCO JSON).

    Args: as :class:`~mirrordet.data.dataset.DetectionDataset`; every record needs ``segments``.
    """

    segments = True

    def load_masked(self, i: int) -> tuple[np.ndarray, tuple[int, int], tuple[float, float], np.ndarray, np.ndarray]:
        """Image ``i`` with its longer side at S, (h0, w0), gains (h, w), its index map at the resized size
        (int16 [h1, w1]) and classes [n]."""
        img, ori_shape, gains, _ = self.load_resized(i)
        h1, w1 = img.shape[:2]
        mask = index_map(self.records[i]["segments"], (h1, w1), (w1, h1))
        return img, ori_shape, gains, mask, np.asarray(self.records[i]["cls"], np.int64)

    def __getitem__(self, i: int) -> dict[str, Any]:
        s = self.imgsz
        img, ori_shape, gains, mask, cls = self.load_masked(i)
        h, w = self._rect[i] if self._rect else (s, s)
        if not self.augment:
            img, rp = letterbox(img, (h, w), scaleup=not self.pad_only)
            mask, ratio_pad = letterbox_mask(mask, rp, (h, w)), compose_ratio_pad(gains, rp)
        else:
            img, mask, cls, ratio_pad = self._augment_masked(i, img, gains, mask, cls)
        keep, boxes = boxes_from_index_map(mask, len(cls))
        mask, cls = relabel(mask, keep), cls[keep]
        rgb = np.ascontiguousarray(img[:, :, ::-1].transpose(2, 0, 1))
        return {
            "img": torch.from_numpy(rgb),
            "cls": torch.from_numpy(cls.astype(np.float32).reshape(-1, 1)),
            "bboxes": torch.from_numpy(xyxy2xywhn(boxes, w, h).astype(np.float32).reshape(-1, 4)),
            "masks": torch.from_numpy(np.ascontiguousarray(mask)),
            "im_file": self.records[i]["im_file"],
            "ori_shape": tuple(ori_shape),
            "resized_shape": (h, w),
            "ratio_pad": ratio_pad,
        }

    def _geometric_masked(self, img: np.ndarray, gains: tuple[float, float], mask: np.ndarray,
                          cls: np.ndarray, rng: np.random.Generator
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, RatioPad]:
        """Mosaic (probability ``mosaic``) or letterbox, then the random affine, on image and map together."""
        s, hyp = self.imgsz, self.hyp
        affine = dict(degrees=hyp["degrees"], translate=hyp["translate"], scale=hyp["aug_scale"], shear=hyp["shear"])
        if len(self) > 0 and rng.random() < self.mosaic:
            parts = [(img, mask, cls)] + [self._parts(int(j)) for j in rng.integers(0, len(self), 3)]
            imgs, masks, classes = zip(*parts)
            tiles = mosaic_layout([im.shape[:2] for im in imgs], s, rng)
            canvas = mosaic_canvas(imgs, tiles, s, PAD_VALUE)
            mcanvas = mosaic_canvas(offset_ids(masks, [len(c) for c in classes]), tiles, s, 0)
            img, mask = random_affine_pair(canvas, mcanvas, rng, (s, s), **affine)
            return img, mask, np.concatenate(classes), ((1.0, 1.0), (0.0, 0.0))
        img, rp = letterbox(img, s)
        mask, ratio_pad = letterbox_mask(mask, rp, (s, s)), compose_ratio_pad(gains, rp)
        img, mask = random_affine_pair(img, mask, rng, (s, s), **affine)
        return img, mask, cls, ratio_pad

    def _copy_paste(self, img: np.ndarray, mask: np.ndarray, cls: np.ndarray, rng: np.random.Generator
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Simple Copy-Paste (Ghiasi et al., 2021): each object of another augmented sample, with probability
        0.5, is pasted by its mask pixels on top of this sample (covering what lies under it)."""
        im_j, mask_j, cls_j = self._augmented_other(rng)
        chosen = np.flatnonzero(rng.random(len(cls_j)) < 0.5)
        if chosen.size == 0:
            return img, mask, cls
        lut = np.zeros(len(cls_j) + 1, mask.dtype)
        lut[chosen + 1] = len(cls) + 1 + np.arange(chosen.size, dtype=mask.dtype)  # new ids after this sample's
        pasted = lut[mask_j]
        where = pasted > 0
        img = img.copy()
        img[where] = im_j[where]
        return img, np.where(where, pasted, mask), np.concatenate([cls, cls_j[chosen]])

    def _augmented_other(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A random sample through the geometric steps (for mixup and copy-paste): (img, index map, cls)."""
        img, _, gains, mask, cls = self.load_masked(int(rng.integers(0, len(self))))
        img, mask, cls, _ = self._geometric_masked(img, gains, mask, cls, rng)
        return img, mask, cls

    def _parts(self, j: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        img, _, _, mask, cls = self.load_masked(j)
        return img, mask, cls

    def _augment_masked(self, i: int, img: np.ndarray, gains: tuple[float, float], mask: np.ndarray,
                        cls: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, RatioPad]:
        """Train-time pipeline of sample ``i``: (img [S, S, 3], index map [S, S], cls [n], ratio_pad)."""
        hyp, rng = self.hyp, self.sample_rng(i)
        img, mask, cls, ratio_pad = self._geometric_masked(img, gains, mask, cls, rng)
        if hyp["mixup"] > 0 and rng.random() < hyp["mixup"]:
            im_j, mask_j, cls_j = self._augmented_other(rng)
            r = rng.beta(32.0, 32.0)
            img = (img.astype(np.float32) * r + im_j.astype(np.float32) * (1 - r)).astype(np.uint8)
            # where both have an object the mixed-in one is on top (either is half visible)
            mask = np.where(mask_j > 0, offset_ids([mask, mask_j], [len(cls), len(cls_j)])[1], mask)
            cls = np.concatenate([cls, cls_j])
        if hyp["copy_paste"] > 0 and rng.random() < hyp["copy_paste"]:
            img, mask, cls = self._copy_paste(img, mask, cls, rng)
        if self.pixel_extra is not None:
            img = self.pixel_extra(img, int(rng.integers(2**31)))
        img = hsv_jitter(img, hyp["hsv_h"], hyp["hsv_s"], hyp["hsv_v"], rng)
        none = np.zeros((0, 4), np.float32)
        if rng.random() < hyp["fliplr"]:
            img, _ = flip_lr(img, none)
            mask = np.ascontiguousarray(mask[:, ::-1])
        if rng.random() < hyp["flipud"]:
            img, _ = flip_ud(img, none)
            mask = np.ascontiguousarray(mask[::-1])
        return img, mask, cls, ratio_pad
