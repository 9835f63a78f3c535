"""Prediction: sources -> letterbox -> fused model -> NMS -> :class:`Result` per image, plus saved outputs.

Detection preprocessing is a minimal-rectangle letterbox: the longer side is resized to
``imgsz`` (bilinear) and the shorter side padded (value 114) to the next multiple of the
model's largest stride, so a 1080x810 image runs at 640x480. Each image is letterboxed on its
own and a batch only stacks images of the same letterboxed shape, so an image's result does not
depend on which other images share its batch. Classifiers see a centre crop of ``imgsz``
(shorter side resized), as in validation.

Outputs (``save_dir``, normally runs/<task>/predict/<name>/): annotated images under their own
file names (videos as ``<stem>.mp4``), ``labels/<stem>.txt`` (``save_txt``, YOLO format
``cls xc yc w h [score]`` normalized to the original image; ``<stem>_<frame>.txt`` for video
frames), ``predictions.json`` (``save_json``, COCO-style records).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from mirrordet.data.preprocess import letterbox_rect, network_input, resized_long_side, stride_multiple
from mirrordet.data.transforms import RatioPad
from mirrordet.engine.inference import InferenceRunner, prepare_model
from mirrordet.engine.predict_outputs import PredictOutputs, log_line
from mirrordet.engine.results import Result
from mirrordet.engine.setup import check_imgsz
from mirrordet.engine.sources import Frame, iter_frames, resolve_source
from mirrordet.ops.boxes import scale_boxes
from mirrordet.ops.detections import Detections
from mirrordet.ops.masks import scale_masks
from mirrordet.ops.nms import NMSSettings
from mirrordet.utils.errors import ConfigError, DatasetError
from mirrordet.utils.log import LOGGER

PREDICT_CONF = 0.25  # score threshold of `predict` when `conf` is null
TASKS = ("detect", "segment", "classify")


def center_crop(img: np.ndarray, size: int) -> np.ndarray:
    """Classifier input: shorter side resized to ``size``, central ``size`` x ``size`` crop (BGR uint8)."""
    from mirrordet.data.classify_transforms import center_crop_resize

    return center_crop_resize(img, size)


class Predictor:
    """Runs a detection or classification model on images, folders, globs, lists, videos and arrays.

    Args:
        model: a :class:`~mirrordet.nn.graph.ModelGraph` (its task, names and stride are used). It is
            not modified: the predictor runs a fused copy.
        cfg: settings (the keys of cfg/default.yaml that apply): conf (None = 0.25), iou, max_det,
            classes, agnostic_nms, imgsz, half, device, batch, vid_stride, save_txt, save_conf,
            save_json, verbose.
        save_dir: output folder, or a callable creating it on first use (no empty run folders);
            None writes nothing.
        save: write annotated images / videos into ``save_dir``.
        runner: an :class:`~mirrordet.engine.inference.InferenceRunner` to reuse (its fused copy and
            traces); by default one is made from ``model``.
    """

    def __init__(self, model: nn.Module, cfg: Mapping[str, Any], save_dir: Path | Callable[[], Path] | None = None,
                 save: bool = False, runner: InferenceRunner | None = None) -> None:
        from mirrordet.utils.torch_utils import select_device

        self.task = model.task
        if self.task not in TASKS:
            raise ConfigError(f"{getattr(model, 'source', 'model')}: cannot predict with a model whose last layer "
                              f"is {type(model.head).__name__} (predict supports {', '.join(TASKS)} heads)")
        self.names = dict(model.names)
        self.stride = model.max_stride
        self.conf = PREDICT_CONF if cfg.get("conf") is None else float(cfg["conf"])
        self.iou, self.max_det = float(cfg.get("iou", 0.7)), int(cfg.get("max_det", 300))
        classes = cfg.get("classes")
        self.classes = [classes] if isinstance(classes, int) else classes
        self.agnostic = bool(cfg.get("agnostic_nms", False))
        imgsz = self.imgsz = int(cfg.get("imgsz", 640))
        if self.task != "classify":
            self.imgsz = check_imgsz(imgsz, self.stride)
        self.batch = max(1, int(cfg.get("batch", 1)))
        self.vid_stride = int(cfg.get("vid_stride", 1))
        self.device = select_device(cfg.get("device"))
        self.half = bool(cfg.get("half", False)) and self.device.type == "cuda"
        if cfg.get("half") and not self.half:
            LOGGER.warning("half=True needs a CUDA device; predicting in float32")
        self.save_txt, self.save_conf = bool(cfg.get("save_txt", False)), bool(cfg.get("save_conf", False))
        self.save_json, self.verbose = bool(cfg.get("save_json", False)), bool(cfg.get("verbose", True))
        self._save_dir, self.save = save_dir, bool(save)
        from mirrordet.engine.exported_model import ExportedNetwork

        self.resize: tuple[int, int] | None = None  # the model's own resize rule (the YAML's `resize`)
        if isinstance(model, ExportedNetwork):  # the file's runtime runs it; a fixed-shape file takes its square size
            self.runner, self.head, self.pad_multiple = model, model.head, model.input_multiple
        else:
            self.resize = model.resize if self.task != "classify" else None
            if self.resize is not None:
                LOGGER.info(f"the model carries its resize rule: short side {self.resize[0]}, long side at most "
                            f"{self.resize[1]} (imgsz={imgsz} is not used)")
            self.runner = runner or InferenceRunner(prepare_model(model, self.device, self.half, fast=True))
            self.head, self.pad_multiple = self.runner.net.head, self.stride
        self.speed: dict[str, float] = {}

    @property
    def save_dir(self) -> Path | None:
        """The output folder (created on first access when given as a callable)."""
        if callable(self._save_dir):
            self._save_dir = Path(self._save_dir())
        return None if self._save_dir is None else Path(self._save_dir)

    # ---- the hot path -----------------------------------------------------------------------------
    def preprocess(self, images: Sequence[np.ndarray]) -> list[tuple[torch.Tensor, list[int], list[RatioPad | None]]]:
        """BGR uint8 images -> groups of same-shaped network inputs.

        Returns:
            [(x [b, 3, H, W] float in [0, 1] RGB on the device, image indices, ratio_pads)] per shape.
        """
        if self.task == "classify":
            crops = [center_crop(im, self.imgsz) for im in images]
            shaped = [(c, None) for c in crops]
        else:
            sizes = ([resized_long_side(*im.shape[:2], *self.resize) for im in images] if self.resize
                     else [self.imgsz] * len(images))
            shaped = [letterbox_rect(im, s, self.pad_multiple) for im, s in zip(images, sizes)]
        groups: dict[tuple[int, int], list[int]] = {}
        for i, (im, _) in enumerate(shaped):
            groups.setdefault(im.shape[:2], []).append(i)
        out = []
        for idx in groups.values():
            x = network_input([shaped[i][0] for i in idx], self.device, self.half)  # NCHW view, NHWC memory
            out.append((x, idx, [shaped[i][1] for i in idx]))
        return out

    @torch.inference_mode()
    def predict_images(self, images: Sequence[np.ndarray], paths: Sequence[str] | None = None,
                       frames: Sequence[int | None] | None = None) -> list[Result]:
        """Predict on BGR uint8 images [H, W, 3]; returns one :class:`Result` per image, in order.

        Per-image ``speed`` (ms) is the batch's time divided by the batch size.
        """
        n = len(images)
        if n == 0:
            return []
        paths = list(paths) if paths is not None else [f"array{i}" for i in range(n)]
        frames = list(frames) if frames is not None else [None] * n
        sync = self.device.type == "cuda"
        t0 = time.perf_counter()
        groups = self.preprocess(images)
        t1 = time.perf_counter()
        raw = [(self.runner(x), idx, rps, x.shape[2:]) for x, idx, rps in groups]
        if sync:
            torch.cuda.synchronize(self.device)
        t2 = time.perf_counter()
        results: list[Result | None] = [None] * n
        for preds, idx, rps, shape in raw:
            if self.task == "classify":
                self._check_output(preds)
                probs = preds.float().cpu()
                for j, i in enumerate(idx):
                    results[i] = Result(images[i], paths[i], self.names, probs=probs[j], frame=frames[i])
                continue
            for found, i, rp in zip(self._detections(preds), idx, rps):
                det = found.rows().cpu()
                scale_boxes(det[:, :4], tuple(shape), images[i].shape[:2], rp)
                masks = None if found.masks is None else scale_masks(found.masks.cpu(), rp, images[i].shape[:2])
                results[i] = Result(images[i], paths[i], self.names, boxes=det, frame=frames[i], masks=masks)
        t3 = time.perf_counter()
        speed = {"preprocess": (t1 - t0) * 1e3 / n, "inference": (t2 - t1) * 1e3 / n,
                 "postprocess": (t3 - t2) * 1e3 / n}
        for r in results:
            r.speed = dict(speed)
        return results  # type: ignore[return-value]

    def _detections(self, preds: Any) -> list[Detections]:
        """Eval output -> per image :class:`Detections` (network input pixels; masks for segmentation heads).

        The head decodes its own output (:meth:`~mirrordet.nn.head.DetectionHead.postprocess`), with
        ``classes`` filtered and ``agnostic_nms`` applied inside its NMS; one label per box.
        """
        nms = NMSSettings(self.conf, self.iou, self.max_det, None if self.classes is None else tuple(self.classes),
                          self.agnostic, multi_label=False)
        return self.head.postprocess(preds, nms)

    def _check_output(self, preds: Any) -> None:
        """A classifier's eval output must be [B, nc] probabilities."""
        if not (isinstance(preds, torch.Tensor) and preds.ndim == 2):
            shape = tuple(preds.shape) if isinstance(preds, torch.Tensor) else type(preds).__name__
            raise ConfigError(f"the model's eval output {shape} is not a classify prediction ([B, nc] probabilities)")

    # ---- sources and outputs -----------------------------------------------------------------------
    def __call__(self, source: Any, stream: bool = False) -> list[Result] | Iterator[Result]:
        """Predict on ``source`` (see :func:`mirrordet.engine.sources.resolve_source`).

        Returns a list of results, or a generator when ``stream`` (results are produced as frames
        are read, which keeps memory flat on long videos).

        Raises:
            DatasetError: the source does not exist or has an unknown type (before any work), or
                none of its images could be read.
        """
        return self.run(resolve_source(source), source, stream)

    def run(self, items: list[Any], source: Any = None, stream: bool = False) -> list[Result] | Iterator[Result]:
        """:meth:`__call__` on items already expanded by :func:`~mirrordet.engine.sources.resolve_source`."""
        gen = self._stream(items, source if source is not None else items)
        return gen if stream else list(gen)

    def _stream(self, items: list[Any], source: Any) -> Iterator[Result]:
        writer = PredictOutputs(lambda: self.save_dir, self._save_dir is not None, self.save, self.save_txt,
                                self.save_conf, self.save_json)
        totals, n_ok, errors = np.zeros(3), 0, []
        shape = None
        try:
            for batch in _batched(iter_frames(items, self.vid_stride), self.batch):
                good = []
                for f in batch:
                    if f.image is None:
                        errors.append(f.error)
                        LOGGER.warning(f"WARNING skipped: {f.error}")
                    else:
                        good.append(f)
                if not good:
                    continue
                results = self.predict_images([f.image for f in good], [f.path for f in good],
                                              [f.frame for f in good])
                for f, r in zip(good, results):
                    totals += (r.speed["preprocess"], r.speed["inference"], r.speed["postprocess"])
                    n_ok += 1
                    writer.write(f, r)
                    if self.verbose:
                        LOGGER.info(log_line(f, r, len(items)))
                    yield r
                shape = (1, 3, *self._input_shape(good[-1].image))
        finally:
            writer.close()
        if n_ok == 0 and errors:
            where = errors[0] if len(errors) == 1 else f"source {source}: none of {len(errors)} items could be read " \
                                                        f"(first: {errors[0]})"
            raise DatasetError(where)
        if n_ok:
            self.speed = dict(zip(("preprocess", "inference", "postprocess"), (totals / n_ok).tolist()))
            if self.verbose:
                LOGGER.info("Speed: %.1fms preprocess, %.1fms inference, %.1fms postprocess per image at shape %s"
                            % (*self.speed.values(), shape))
        if errors:
            LOGGER.warning(f"WARNING {len(errors)} of {len(errors) + n_ok} items could not be read (see above)")
        if writer.wrote:
            LOGGER.info(f"Results saved to {self.save_dir}" + (f" ({writer.n_labels} label files in labels/)"
                                                                 if self.save_txt else ""))

    def _input_shape(self, img: np.ndarray) -> tuple[int, int]:
        if self.task == "classify":
            return self.imgsz, self.imgsz
        h0, w0 = img.shape[:2]
        r = min(self.imgsz / h0, self.imgsz / w0)
        return (stride_multiple(min(self.imgsz, max(1, round(h0 * r))), self.pad_multiple),
                stride_multiple(min(self.imgsz, max(1, round(w0 * r))), self.pad_multiple))


def _batched(frames: Iterator[Frame], n: int) -> Iterator[list[Frame]]:
    batch: list[Frame] = []
    for f in frames:
        batch.append(f)
        if len(batch) == n:
            yield batch
            batch = []
    if batch:
        yield batch
