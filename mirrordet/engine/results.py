"""Prediction results: :class:`Result` per image, with :class:`Boxes` (detect; plus
:class:`~mirrordet.engine.result_masks.Masks` for segment) or :class:`Probs` (classify).

Box data is kept as a torch tensor on the CPU; every box is in pixels of the ORIGINAL image
(``orig_shape`` = (h, w)), after undoing the letterbox.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from mirrordet.engine.result_masks import Masks
from mirrordet.ops.boxes import xyxy2xywh
from mirrordet.utils.files import atomic_write_text


def plural(name: str, n: int) -> str:
    """``"bus", 2`` -> ``"buses"``; ``"person", 2`` -> ``"persons"``; unchanged for n == 1."""
    if n == 1:
        return name
    return name + ("es" if name.endswith(("s", "x", "z", "ch", "sh")) else "s")


class Boxes:
    """Detections of one image.

    Args:
        data: [n, 6] x1, y1, x2, y2 (original image pixels), score, class index.
        orig_shape: (h, w) of the original image.
    """

    def __init__(self, data: torch.Tensor, orig_shape: tuple[int, int]) -> None:
        if data.ndim != 2 or data.shape[1] != 6:
            raise ValueError(f"Boxes data must be [n, 6], got {tuple(data.shape)}")
        self.data = data
        self.orig_shape = (int(orig_shape[0]), int(orig_shape[1]))

    def __len__(self) -> int:
        return self.data.shape[0]

    @property
    def xyxy(self) -> torch.Tensor:
        """[n, 4] x1, y1, x2, y2 pixels."""
        return self.data[:, :4]

    @property
    def conf(self) -> torch.Tensor:
        """[n] scores in [0, 1]."""
        return self.data[:, 4]

    @property
    def cls(self) -> torch.Tensor:
        """[n] class indices (float, as stored)."""
        return self.data[:, 5]

    @property
    def xywh(self) -> torch.Tensor:
        """[n, 4] center x, center y, width, height in pixels."""
        return xyxy2xywh(self.xyxy)

    @property
    def xywhn(self) -> torch.Tensor:
        """[n, 4] xywh normalized by the original width / height (YOLO label format)."""
        h, w = self.orig_shape
        return self.xywh / torch.tensor([w, h, w, h], dtype=self.data.dtype)

    @property
    def xyxyn(self) -> torch.Tensor:
        """[n, 4] xyxy normalized by the original width / height."""
        h, w = self.orig_shape
        return self.xyxy / torch.tensor([w, h, w, h], dtype=self.data.dtype)

    def __repr__(self) -> str:
        return f"Boxes(n={len(self)}, orig_shape={self.orig_shape})"


class Probs:
    """Class probabilities of one image.

    Args:
        data: [nc] probabilities (softmax of the Classify head, summing to 1).
    """

    def __init__(self, data: torch.Tensor) -> None:
        self.data = data.reshape(-1)

    @property
    def top5(self) -> list[int]:
        """The (up to) 5 most probable class indices, best first."""
        return self.data.topk(min(5, self.data.numel())).indices.tolist()

    @property
    def top1(self) -> int:
        return int(self.data.argmax())

    @property
    def top5conf(self) -> torch.Tensor:
        """[<=5] probabilities of :attr:`top5`."""
        return self.data.topk(min(5, self.data.numel())).values

    @property
    def top1conf(self) -> float:
        return float(self.data.max())

    def __repr__(self) -> str:
        return f"Probs(top1={self.top1}, top1conf={self.top1conf:.3f})"


class Result:
    """The prediction of one image (or video frame).

    Attributes:
        orig_img: BGR uint8 [H, W, 3] as read.
        orig_shape: (H, W).
        path: image file, video file, or ``"arrayN"``. frame: video frame number or None.
        names: {class index: name}.
        boxes: :class:`Boxes` (detection and segmentation models) or None.
        masks: :class:`~mirrordet.engine.result_masks.Masks` (segmentation models: bool [n, H, W]) or None.
        probs: :class:`Probs` (classification models) or None.
        speed: milliseconds per stage for this image: preprocess, inference, postprocess.
    """

    def __init__(self, orig_img: np.ndarray, path: str, names: Mapping[int, str], boxes: torch.Tensor | None = None,
                 probs: torch.Tensor | None = None, frame: int | None = None,
                 speed: Mapping[str, float] | None = None, masks: torch.Tensor | None = None) -> None:
        self.orig_img = orig_img
        self.orig_shape = (int(orig_img.shape[0]), int(orig_img.shape[1]))
        self.path, self.frame, self.names = path, frame, dict(names)
        self.boxes = Boxes(boxes, self.orig_shape) if boxes is not None else None
        self.probs = Probs(probs) if probs is not None else None
        self.masks = Masks(masks) if masks is not None else None
        self.speed = dict(speed or {})

    def __len__(self) -> int:
        if self.boxes is not None:
            return len(self.boxes)
        return 0 if self.probs is None else self.probs.data.numel()

    def __repr__(self) -> str:
        what = self.boxes if self.boxes is not None else self.probs
        return f"Result(path={self.path!r}, orig_shape={self.orig_shape}, {what!r})"

    @property
    def stem(self) -> str:
        """File name without suffix; ``<stem>_<frame>`` for video frames."""
        s = Path(self.path).stem
        return f"{s}_{self.frame}" if self.frame is not None else s

    def verbose(self) -> str:
        """``"2 circles, 1 square"`` (counts per class), ``"no detections"``, or top-5 ``"circle 0.91, ..."``."""
        if self.probs is not None:
            return ", ".join(f"{self.names.get(k, k)} {p:.2f}" for k, p in
                             zip(self.probs.top5, self.probs.top5conf.tolist()))
        if self.boxes is None or len(self.boxes) == 0:
            return "no detections"
        classes, counts = np.unique(self.boxes.cls.numpy().astype(np.int64), return_counts=True)
        return ", ".join(f"{n} {plural(str(self.names.get(int(c), int(c))), int(n))}" for c, n in zip(classes, counts))

    def summary(self) -> list[dict[str, Any]]:
        """Plain records: per box ``{name, class, confidence, box: {x1, y1, x2, y2}}`` (pixels), or
        per top-5 class ``{name, class, confidence}``."""
        if self.probs is not None:
            return [{"name": self.names.get(k, str(k)), "class": int(k), "confidence": round(float(p), 5)}
                    for k, p in zip(self.probs.top5, self.probs.top5conf.tolist())]
        if self.boxes is None:
            return []
        rows = self.boxes.data.tolist()
        out = [{"name": self.names.get(int(c), str(int(c))), "class": int(c), "confidence": round(s, 5),
                "box": {"x1": round(x1, 2), "y1": round(y1, 2), "x2": round(x2, 2), "y2": round(y2, 2)}}
               for x1, y1, x2, y2, s, c in rows]
        if self.masks is not None:  # the outline of each mask, pixels
            for rec, poly in zip(out, self.masks.xy):
                rec["segments"] = {"x": [round(float(v), 2) for v in poly[:, 0]],
                                   "y": [round(float(v), 2) for v in poly[:, 1]]}
        return out

    def to_json(self, indent: int | None = None) -> str:
        """:meth:`summary` as a JSON string."""
        return json.dumps(self.summary(), indent=indent)

    def plot(self, line_width: int | None = None, labels: bool = True, conf: bool = True) -> np.ndarray:
        """The original image with boxes (or the top-5 classes) drawn: a new BGR uint8 [H, W, 3] array."""
        from mirrordet.plotting.annotate import draw_classification, draw_detections

        if self.probs is not None:
            return draw_classification(self.orig_img, list(zip(self.probs.top5, self.probs.top5conf.tolist())),
                                       self.names, line_width)
        if self.boxes is None:
            return self.orig_img.copy()
        d = self.boxes.data.numpy()
        img = self.orig_img
        if self.masks is not None:
            from mirrordet.plotting.annotate import draw_masks

            img = draw_masks(img, self.masks.data.cpu().numpy(), d[:, 5])
        return draw_detections(img, d[:, :4], d[:, 5], d[:, 4] if conf else None, self.names, line_width, labels)

    def txt_lines(self, save_conf: bool = False) -> list[str]:
        """YOLO label lines ``cls xc yc w h [score]`` (normalized), YOLO-seg lines ``cls x1 y1 x2 y2 ... [score]``
        (the mask outlines, normalized; masks without pixels are left out) or top-5 ``prob name`` lines."""
        if self.probs is not None:
            return [f"{p:.5f} {self.names.get(k, k)}" for k, p in zip(self.probs.top5, self.probs.top5conf.tolist())]
        if self.boxes is None:
            return []
        if self.masks is not None:
            lines = []
            for poly, s, c in zip(self.masks.xyn, self.boxes.conf.tolist(), self.boxes.cls.tolist()):
                if len(poly) >= 3:
                    line = f"{int(c)} " + " ".join(f"{v:.6f}" for v in poly.reshape(-1).clip(0, 1))
                    lines.append(line + f" {s:.6f}" if save_conf else line)
            return lines
        xywhn = self.boxes.xywhn.clamp(0, 1).tolist()
        out = []
        for (x, y, w, h), s, c in zip(xywhn, self.boxes.conf.tolist(), self.boxes.cls.tolist()):
            line = f"{int(c)} {x:.6f} {y:.6f} {w:.6f} {h:.6f}"
            out.append(line + f" {s:.6f}" if save_conf else line)
        return out

    def save_txt(self, path: str | Path, save_conf: bool = False) -> Path:
        """Write :meth:`txt_lines` to ``path`` (atomically; an empty file when nothing was found)."""
        lines = self.txt_lines(save_conf)
        return atomic_write_text(path, "".join(f"{ln}\n" for ln in lines))

    def coco_records(self, image_id: int | str) -> list[dict[str, Any]]:
        """COCO-style records: ``{image_id, file_name, category_id, bbox: [x, y, w, h] pixels, score}``
        per box; for a classifier, one record per top-5 class (``category_id``, ``score``)."""
        if self.probs is not None:
            return [{"image_id": image_id, "file_name": self.path, "category_id": int(k), "score": round(float(p), 5)}
                    for k, p in zip(self.probs.top5, self.probs.top5conf.tolist())]
        if self.boxes is None:
            return []
        out = []
        for (x1, y1, x2, y2, s, c) in self.boxes.data.tolist():
            out.append({"image_id": image_id, "file_name": self.path, "category_id": int(c),
                        "bbox": [round(x1, 3), round(y1, 3), round(x2 - x1, 3), round(y2 - y1, 3)],
                        "score": round(s, 5)})
        if self.masks is not None:  # each mask as COCO RLE, as in a COCO results file
            for rec, rle in zip(out, self.masks.rle()):
                rec["segmentation"] = rle
        return out
