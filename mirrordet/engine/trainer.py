"""Trainer: one loop for every model family (the loss is chosen by the model's head).

Per iteration: warmup -> forward (autocast when ``amp`` enables it, see engine/amp.py) -> loss ->
backward -> every ``accumulate`` iterations: unscale, clip, step, EMA update. Per epoch: LR schedule step,
validation of the EMA weights (a Conv+BN-fused, channels-last copy, as `mirrordet val` runs), results.csv row,
last.pt / best.pt (atomic), results.png. At the end: the final validation of best.pt with plots and per-class
table; when best.pt holds the last epoch's weights, that epoch was validated with these options and is not run
again.
"""

from __future__ import annotations

import math
import time
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
import yaml
from torch import nn
from tqdm import tqdm

from mirrordet.data.loader import set_loader_epoch
from mirrordet.data.preprocess import random_batch_scale, to_unit_float
from mirrordet.engine.callbacks import Callbacks
from mirrordet.engine.callbacks_io import ResultsCSV
from mirrordet.engine.amp import amp_dtype, autocast
from mirrordet.engine.checkpoint import cpu_state, save_checkpoint, strip_for_inference
from mirrordet.engine.checkpoint_format import Checkpoint
from mirrordet.engine.distributed import (all_true, broadcast_object, checksums_agree, cleanup, dist_info,
                                          init_distributed)
from mirrordet.engine.ema import ModelEMA, NoEMA
from mirrordet.engine.exported_model import is_exported
from mirrordet.engine.fingerprint import recipe_fingerprint, run_settings
from mirrordet.engine.inference import prepare_model
from mirrordet.engine.optim import build_optimizer, optimizer_momentum, warmup_step
from mirrordet.engine.resume import resumable_failures, resume_settings
from mirrordet.engine.run_dir import resume_run_dir, run_dir
from mirrordet.engine.setup import check_classes, check_imgsz, resolve_settings
from mirrordet.engine.tasks import criterion, plot_training_labels, task_for
from mirrordet.engine.train_state import EpochPlan, LoopState, RunParts
from mirrordet.engine.weights import is_checkpoint_path, load_matching, load_weights, rebuild_network, transfer_weights
from mirrordet.nn.graph import ModelGraph, build_model
from mirrordet.utils.errors import CheckpointError, ConfigError, MirrordetError
from mirrordet.utils.files import atomic_write_text
from mirrordet.utils.log import LOGGER
from mirrordet.utils.torch_utils import get_rng_state, init_seeds, select_device, set_rng_state
from mirrordet.version import __version__


class NonFiniteLossError(MirrordetError):
    """Too many consecutive non-finite losses: the run stops (last.pt stays usable)."""


class Trainer:
    """Trains a model described by ``overrides`` (see cfg/default.yaml for every key).

    Args:
        overrides: settings on top of the defaults (and the dataset YAML's ``defaults:``).
        model: an already built network (from a model YAML, not a checkpoint) to train in place.
    """

    def __init__(self, overrides: Mapping[str, Any], model: ModelGraph | None = None,
                 callbacks: Callbacks | None = None) -> None:
        overrides = dict(overrides)
        self.callbacks = callbacks.copy() if callbacks is not None else Callbacks()
        self.resume_ckpt: Checkpoint | None = None
        if overrides.get("resume"):
            overrides, self.resume_ckpt = resume_settings(overrides)
        self.cfg, self.data = resolve_settings(overrides)
        cfg = self.cfg
        if self.cfg["tensorboard"]:
            from mirrordet.engine.tensorboard_logger import TensorBoardLogger

            TensorBoardLogger().attach(self.callbacks)
        if self.cfg["mlflow"]:
            from mirrordet.engine.mlflow_logger import MLflowLogger

            MLflowLogger().attach(self.callbacks)
        self.dist = dist_info()
        self.device = init_distributed(self.dist, select_device(cfg["device"]))
        if not self.dist.is_main:
            LOGGER.setLevel("WARNING")  # only rank 0 prints tables and progress
        init_seeds(cfg["seed"], cfg["deterministic"])
        self.names = dict(self.data["names"])
        self.model = self._build_model(model)
        if cfg["freeze"] is not None:  # after a resume too: the frozen layers stay frozen
            LOGGER.info(f"freeze={cfg['freeze']}: {self.model.freeze(cfg['freeze'])} parameter tensors kept fixed")
        self.task = task_for(self.model, self.data)
        self.stride = self.model.max_stride
        self.imgsz = check_imgsz(cfg["imgsz"], self.stride)
        self.amp_dtype = amp_dtype(cfg["amp"], self.device)
        self.amp = self.amp_dtype is torch.float16  # float16 needs the GradScaler; bfloat16 does not
        save_dir = None
        if self.resume_ckpt is not None:  # continue where the given last.pt lives, never the path stored in it
            save_dir = resume_run_dir(Path(str(cfg["model"])))
        elif self.dist.is_main:  # only rank 0 creates and writes the run folder
            save_dir = run_dir(self.model.task, "train", cfg["project"], cfg["name"], cfg["exist_ok"])
        self.save_dir = Path(broadcast_object(str(save_dir), self.dist))
        self.wdir = self.save_dir / "weights"  # created by the first checkpoint write
        self.state = LoopState()
        self.plan = EpochPlan(cfg["epochs"], cfg["lrf"], cfg["cos_lr"])  # `time=` may re-fit it; cfg stays as given

    # ---- set-up --------------------------------------------------------------------------------
    def _build_model(self, model: ModelGraph | None) -> ModelGraph:
        cfg, nc = self.cfg, int(self.data["nc"])
        if cfg["nc"] is not None and int(cfg["nc"]) != nc:
            raise ConfigError(f"nc={cfg['nc']} but {self.data.get('yaml_file')} has {nc} classes; a detector is "
                              "trained for its dataset's classes (leave nc unset)")
        if self.resume_ckpt is not None:
            trained_nc = self.resume_ckpt.model_cfg.get("nc")
            if trained_nc is not None and int(trained_nc) != nc:
                raise ConfigError(f"cannot resume {cfg['model']}: it was trained for {trained_nc} classes but "
                                  f"{self.data.get('yaml_file')} now has {nc}; start a new run instead")
            net = rebuild_network(self.resume_ckpt, cfg["model"], weights="train_weights", nc=nc, names=self.names)
            return net.to(self.device)
        if model is not None:
            net = model
            if net.nc != nc:
                net = build_model(model.source, nc=nc, scale=cfg["scale"] or net.scale, names=self.names)
        elif is_exported(cfg["model"]):
            raise ConfigError(f"model={cfg['model']} is an exported model: train needs the .pt checkpoint it was "
                              "exported from (exported files run predict and val)")
        elif is_checkpoint_path(cfg["model"]):
            net = transfer_weights(cfg["model"], nc, self.names)  # fine-tune: same architecture, new classes if needed
        else:
            net = build_model(cfg["model"], nc=nc, scale=cfg["scale"], names=self.names)
        if cfg["weights"]:
            load_matching(net, cfg["weights"], cfg["weights"])  # pretrained start: the tensors that fit
        net.names = self.names
        check_classes(net.nc, self.data)
        return net.to(self.device)

    # ---- checkpoints ---------------------------------------------------------------------------
    def _checkpoint(self, epoch: int, best_fitness: float | None) -> dict:
        # epochs: the plan's (a `time=` budget may have re-fit it), so a resume continues the same schedule
        args = {**self.cfg, "epochs": self.plan.epochs, "save_dir": str(self.save_dir), "imgsz": self.imgsz}
        ema = self.parts.ema.state_dict()
        return Checkpoint(
            model_yaml=self.model.yaml_text, model_cfg={"scale": self.model.scale, "nc": self.model.nc},
            names=dict(self.names), model=cpu_state(ema["ema"]), train_weights=cpu_state(self.model.state_dict()),
            ema={"updates": int(ema["updates"])}, optimizer=self.parts.optimizer.state_dict(),
            scaler=self.parts.scaler.state_dict() if self.amp else None, epoch=epoch, best_fitness=best_fitness,
            train_args=args, rng=get_rng_state(), train_time=round(self._elapsed(), 3),
            date=datetime.now(timezone.utc).isoformat(), version=__version__, fingerprint=self.fingerprint,
        ).to_dict()

    # ---- the loop ------------------------------------------------------------------------------
    def train(self) -> dict[str, Any]:
        """Run the epochs; returns the final validation metrics of best.pt (rank 0; {} elsewhere).

        Raises:
            TrainingInterrupted: Ctrl-C (or SIGINT).
            RunStorageError: the disk is full or the run folder read-only (earlier checkpoints stay intact).
            DataLoaderWorkerError: a data-loading worker process died.
            Each message says what last.pt holds and how to resume.
        """
        try:
            with resumable_failures(self.wdir, lambda: self.state.epoch + 1):
                return self._train()
        finally:
            cleanup()

    def _build_parts(self) -> RunParts:
        """Data, loss, optimizer, scaler, EMA (restored on resume) and the (DDP-wrapped) model of the run."""
        cfg, model, task, world, state = self.cfg, self.model, self.task, self.dist.world_size, self.state
        if cfg["batch"] % world:
            raise ConfigError(f"batch={cfg['batch']} must be a multiple of the {world} DDP processes")
        batch = cfg["batch"] // world  # per rank
        train_set, train_loader = task.build_split(self.data, "train", cfg, self.imgsz, augment=True, batch=batch,
                                                   rank=self.dist.rank, world_size=world)
        validator = None
        if self.dist.is_main:  # validation runs on rank 0 only
            val_set, val_loader = task.build_split(self.data, "val", cfg, self.imgsz, augment=False, batch=cfg["batch"] * 2,
                                                   stride=self.stride)
            validator = task.validator(val_set, val_loader, cfg, self.save_dir)
        loss = criterion(model, cfg, world)
        state.accumulate = max(round(cfg["nbs"] / cfg["batch"]), 1)
        weight_decay = cfg["weight_decay"] * cfg["batch"] * state.accumulate / cfg["nbs"]
        iterations = math.ceil(len(train_set) / max(cfg["batch"], cfg["nbs"])) * cfg["epochs"]
        optimizer, opt_name, lr0 = build_optimizer(model, cfg["optimizer"], cfg["lr0"], cfg["momentum"], weight_decay,
                                                   iterations, model.nc)
        scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        ema = ModelEMA(model) if cfg["ema"] else NoEMA(model)
        parts = RunParts(train_set, train_loader, validator, loss, optimizer, opt_name, lr0, optimizer_momentum(optimizer),
                         scaler, ema, model, batch)
        if self.resume_ckpt is not None:
            self._restore(self.resume_ckpt, parts)
        state.epoch = state.start_epoch  # the epoch an interrupt reports, until the loop starts
        # last_epoch=start-1 makes the constructor set the LR of epoch `start` (needs 'initial_lr' on resume)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda=self.plan.lr_lambda,
                                                           last_epoch=state.start_epoch - 1)
        if self.dist.enabled:
            if cfg["sync_bn"]:
                model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
                self.model = model
            ids = [self.device.index] if self.device.type == "cuda" else None
            parts.train_model = nn.parallel.DistributedDataParallel(model, device_ids=ids)
        return parts

    @cached_property
    def fingerprint(self) -> str:
        """The recipe fingerprint (engine/fingerprint.py); a resumed run keeps its checkpoint's."""
        resumed = self.resume_ckpt.fingerprint if self.resume_ckpt is not None else ""
        return resumed or recipe_fingerprint(run_settings(self.cfg, self.imgsz))

    def _write_run_header(self) -> ResultsCSV:
        cfg, task = self.cfg, self.task
        csv = ResultsCSV(self.save_dir / "results.csv",
                         ["epoch", *(f"train/{n}" for n in self.parts.criterion.names), *task.metric_keys, "fitness", "lr/pg0",
                          "epoch_time"],
                         resume_epoch=self.state.start_epoch + 1 if self.resume_ckpt is not None else None)
        if self.resume_ckpt is None:
            args = {**run_settings(self.cfg, self.imgsz), "fingerprint": self.fingerprint}
            atomic_write_text(self.save_dir / "args.yaml", yaml.safe_dump(args, sort_keys=False))
            if cfg["plots"]:
                plot_training_labels(self.task, self.parts.train_set, self.names, self.save_dir / "labels.png")
        return csv

    def _train(self) -> dict[str, Any]:
        cfg, main = self.cfg, self.dist.is_main
        self.parts = self._build_parts()
        csv = self._write_run_header() if main else None
        epochs = self.plan.epochs
        if self.state.start_epoch >= epochs:
            LOGGER.info(f"{self.save_dir} already finished {epochs} epochs; nothing to resume")
            return {}
        nb = len(self.parts.train_loader)
        self.plan.set_warmup(cfg["warmup_epochs"], nb)
        ddp = f", DDP x{self.dist.world_size} ({self.parts.batch}/rank)" if self.dist.enabled else ""
        LOGGER.info(f"Training {Path(str(cfg['model'])).name} on {self.data.get('yaml_file')} for {epochs} epochs: "
                    f"imgsz {self.imgsz}, batch {cfg['batch']} (accumulate {self.state.accumulate}){ddp}, "
                    f"{self.parts.opt_name}(lr={self.parts.lr0:g}), device {self.device}, "
                    f"AMP {str(self.amp_dtype).replace('torch.', '') if self.amp_dtype else False}, "
                    f"{len(self.parts.train_set)} train images\nLogging results to {self.save_dir}")
        self.state.last_opt_step, self.state.bad_steps = -1, 0
        patience_left = cfg["patience"] or float("inf")
        self.t_session = time.time()
        self.best_is_last: dict[str, Any] | None = None  # the last epoch's metrics when best.pt holds its weights
        self._event("on_train_start")
        epoch = self.state.start_epoch
        while epoch < self.plan.epochs:  # `time=` may re-fit the plan after each epoch
            self.state.epoch = epoch
            t_epoch = time.time()
            self._event("on_epoch_start", epoch=epoch)
            mean_loss = self._train_epoch(epoch)
            lr = self.parts.optimizer.param_groups[0]["lr"]
            self.scheduler.step()
            stop = False
            if main:
                improved = self._end_epoch(epoch, mean_loss, lr, time.time() - t_epoch, csv)
                patience_left = cfg["patience"] if improved and cfg["patience"] else patience_left - 1
                stop = patience_left <= 0 and epoch + 1 < self.plan.epochs
                if stop:
                    LOGGER.info(f"Stopping early: no improvement in the last {cfg['patience']} epochs")
            if broadcast_object(stop, self.dist):
                break
            if cfg["time"]:
                self._fit_epochs_to_time(epoch)
            epoch += 1
        sums = checksums_agree(self.model, self.dist, self.device)
        if self.dist.enabled:
            if max(sums) != min(sums):
                raise MirrordetError(f"DDP ranks ended with different weights (checksums {sums})")
            LOGGER.info(f"weights identical across {self.dist.world_size} ranks (checksum {sums[0]:.6f})")
        return self._final_validation() if main else {}

    def _elapsed(self) -> float:
        """Training seconds so far, including those of the runs this one resumes."""
        return self.state.prior_train_time + time.time() - self.t_session

    def _fit_epochs_to_time(self, epoch: int) -> None:
        """``time=`` budget: re-fit the epoch count (and LR schedule) to the time left after ``epoch``.

        Rank 0 estimates seconds per epoch from this session's epochs (training + validation) and
        broadcasts the new total, so every DDP rank runs the same number of epochs.
        """
        cfg, done = self.cfg, epoch + 1
        total, was = self.plan.epochs, self.plan.epochs
        if self.dist.is_main:
            per_epoch = (time.time() - self.t_session) / (done - self.state.start_epoch)
            left = cfg["time"] * 3600 - self._elapsed()
            total = done + max(int(left // per_epoch), 0)
        total = int(broadcast_object(total, self.dist))
        if self.plan.refit(total, done, self.parts.optimizer, self.scheduler):
            LOGGER.info(f"time={cfg['time']:g} h: {self._elapsed():.0f} s used, training {total} epochs in all "
                        f"(was {was})")

    def _train_epoch(self, epoch: int) -> torch.Tensor:
        """One pass over the training split; returns the mean loss items [L]."""
        cfg, task, device, nb = self.cfg, self.task, self.device, len(self.parts.train_loader)
        self.parts.train_model.train()
        self.parts.criterion.set_progress(epoch, self.plan.epochs)
        self.parts.train_set.set_epoch(epoch)  # augmentation and shuffling depend on (seed, epoch) only: resumable
        set_loader_epoch(self.parts.train_loader, epoch)  # the order is a function of (seed, epoch): resumable
        if self.plan.epochs - epoch <= cfg["close_mosaic"] and getattr(self.parts.train_set, "mosaic", 0) > 0:
            LOGGER.info("Closing mosaic augmentation")
            self.parts.train_set.close_mosaic()
        mean_loss = torch.zeros(len(self.parts.criterion.names))
        bar = tqdm(enumerate(self.parts.train_loader), total=nb, disable=not (cfg["verbose"] and self.dist.is_main),
                   dynamic_ncols=True, desc=f"{epoch + 1}/{self.plan.epochs}")
        self.parts.optimizer.zero_grad()
        self.state.last_opt_step = nb * epoch - 1  # each epoch starts with no accumulated gradient, resumed or not
        for i, batch_d in bar:
            ni = i + nb * epoch
            if ni <= self.plan.warmup_iters:
                warmup_step(self.parts.optimizer, ni, self.plan.warmup_iters, epoch, self.plan.lr_lambda, self.parts.lr0, cfg["warmup_bias_lr"],
                            self.parts.momentum, cfg["warmup_momentum"])
                self.state.accumulate = max(1, int(np.interp(ni, [0, self.plan.warmup_iters], [1, cfg["nbs"] / cfg["batch"]]).round()))
            img = to_unit_float(batch_d["img"].to(device, non_blocking=True))
            if cfg["multi_scale"]:  # a size per batch, a function of (seed, epoch, batch): resumable
                img = random_batch_scale(img, self.imgsz, self.stride, np.random.default_rng([cfg["seed"], epoch, i]))
            targets = task.targets(batch_d, img, device)
            with autocast(device, self.amp_dtype):
                preds = self.parts.train_model(img, targets)  # targets reach heads that sample their own
                loss, items = self.parts.criterion.evaluate(preds, targets, img.shape[0])  # DDP-scaled
            if not all_true(bool(torch.isfinite(loss)), self.dist, device):  # every rank skips together
                self._skip_step(epoch, i)
                continue
            self.state.bad_steps = 0
            self.parts.scaler.scale(loss).backward()
            if ni - self.state.last_opt_step >= self.state.accumulate:
                self._optimizer_step(cfg["grad_clip"])
                self.state.last_opt_step = ni
            mean_loss = (mean_loss * i + items.cpu()) / (i + 1)
            bar.set_postfix({n: f"{v:.3f}" for n, v in zip(self.parts.criterion.names, mean_loss.tolist())}, refresh=False)
            if self.callbacks:
                self._event("on_batch_end", epoch=epoch, batch=i,
                            losses=dict(zip(self.parts.criterion.names, mean_loss.tolist())))
        if self.state.last_opt_step < nb * epoch + nb - 1 and self.state.bad_steps == 0:
            self._optimizer_step(cfg["grad_clip"])  # flush: no gradient is carried across epochs
            self.state.last_opt_step = nb * epoch + nb - 1
        return mean_loss

    def _skip_step(self, epoch: int, i: int) -> None:
        self.state.bad_steps += 1
        LOGGER.warning(f"non-finite loss at epoch {epoch + 1} batch {i}: step skipped ({self.state.bad_steps} in a row)")
        self.parts.optimizer.zero_grad()
        if self.state.bad_steps >= self.cfg["max_bad_steps"]:
            raise NonFiniteLossError(f"{self.state.bad_steps} non-finite losses in a row; stopping. "
                                     f"{self.wdir / 'last.pt'} holds the last completed epoch")

    def _end_epoch(self, epoch: int, mean_loss: torch.Tensor, lr: float, epoch_time: float, csv: ResultsCSV) -> bool:
        """Rank 0: validate, log a results row, write checkpoints and plots. Returns 'fitness improved'."""
        cfg, task = self.cfg, self.task
        metrics: dict[str, Any] = {}
        final = epoch + 1 == self.plan.epochs  # (`time=` may still extend the plan)
        if cfg["val"] or final:  # the last epoch's validation is the final one's, in case best.pt gets its weights
            metrics = self._validate(self.parts.ema.ema, **(self._final_options() if final else
                                                            {"verbose": False, "plots": False, "save_json": False}))
            self._event("on_val_end", epoch=epoch, metrics=metrics)
        fit = metrics.get("fitness", 0.0)
        improved = self.state.best_fitness is None or fit >= self.state.best_fitness
        self.state.best_fitness = fit if improved else self.state.best_fitness
        self.best_is_last = metrics if final and improved else None  # reset every epoch: only the last one counts
        csv.append({"epoch": epoch + 1, **{f"train/{n}": float(v) for n, v in zip(self.parts.criterion.names, mean_loss)},
                    **{k: float(metrics.get(k, 0.0)) for k in task.metric_keys}, "fitness": float(fit),
                    "lr/pg0": lr, "epoch_time": round(epoch_time, 3)})
        ckpt = self._checkpoint(epoch + 1, self.state.best_fitness)
        written = [save_checkpoint(self.wdir / "last.pt", ckpt)]
        if improved:
            written.append(save_checkpoint(self.wdir / "best.pt", strip_for_inference(ckpt)))
        if cfg["save_period"] > 0 and (epoch + 1) % cfg["save_period"] == 0:
            written.append(save_checkpoint(self.wdir / f"epoch{epoch + 1}.pt", strip_for_inference(ckpt)))
        for path in written:
            self._event("on_checkpoint_saved", epoch=epoch, path=path)
        shown = " ".join(f"{k.split('/')[-1]}={metrics.get(k, 0):.4f}" for k in task.metric_keys[-2:])
        LOGGER.info(f"epoch {epoch + 1}/{self.plan.epochs}: "
                    + " ".join(f"{n}={v:.4f}" for n, v in zip(self.parts.criterion.names, mean_loss)) + f" {shown} ({epoch_time:.1f}s)")
        if cfg["plots"]:
            from mirrordet.plotting.results import plot_results

            plot_results(self.save_dir / "results.csv")
        self._event("on_epoch_end", epoch=epoch, losses=dict(zip(self.parts.criterion.names, mean_loss.tolist())),
                    metrics=metrics, lr=lr)
        return improved

    def _event(self, event: str, **details: Any) -> None:
        """Run the callbacks of ``event`` (rank 0 only; see engine/callbacks.py)."""
        if self.dist.is_main:
            self.callbacks.run(event, self, **details)

    def _optimizer_step(self, grad_clip: float) -> None:
        self.parts.scaler.unscale_(self.parts.optimizer)
        if grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm=grad_clip)
        self.parts.scaler.step(self.parts.optimizer)
        self.parts.scaler.update()
        self.parts.optimizer.zero_grad()
        self.parts.ema.update(self.model)

    def _restore(self, ck: Checkpoint, parts: RunParts) -> None:
        """Optimizer, scaler, EMA, counters and random states of the run ``ck`` was saved from."""
        path = self.cfg["model"]
        try:
            parts.optimizer.load_state_dict(ck.optimizer)
            if self.amp and ck.scaler:
                parts.scaler.load_state_dict(ck.scaler)
            updates = int((ck.ema or {}).get("updates", 0))
            start = int(ck.epoch)
            self.state.prior_train_time = float(ck.train_time)
            if ck.rng:
                set_rng_state(ck.rng)
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as e:
            raise CheckpointError(f"{path}: its training state cannot be restored ({type(e).__name__}: "
                                  f"{str(e).splitlines()[0][:200] if str(e) else 'malformed'}); start a new run") from None
        parts.ema.load_state_dict({"ema": ck.model, "updates": updates}, f"{path} (EMA weights)")
        self.state.start_epoch, self.state.best_fitness = start, ck.best_fitness
        LOGGER.info(f"Resuming {self.save_dir} from epoch {start + 1}")

    def _validate(self, model: nn.Module, **options: Any) -> dict[str, Any]:
        """Validate an inference copy of ``model`` (Conv+BN fused, channels-last, as `mirrordet val` runs it): the
        EMA weights after an epoch, best.pt at the end. ``model`` itself is not changed."""
        net = prepare_model(model, self.device, half=False, fast=True)
        return self.parts.validator(net, self.device, channels_last=True, **options)

    def _final_options(self) -> dict[str, bool]:
        return {"verbose": self.cfg["verbose"], "plots": self.cfg["plots"], "save_json": self.cfg["save_json"]}

    def _final_validation(self) -> dict[str, Any]:
        """The metrics of best.pt: validated now, or, when best.pt holds the last epoch's EMA weights (the same
        float32 tensors), that epoch's validation, which ran with the final options."""
        best = self.wdir / "best.pt"
        if self.best_is_last is not None:
            LOGGER.info(f"{best} holds the weights of the last epoch, validated above")
            metrics = self.best_is_last
        else:
            model, _ = load_weights(best)
            LOGGER.info(f"Validating {best}")
            metrics = self._validate(model, **self._final_options())
        LOGGER.info(f"Results saved to {self.save_dir}")
        self._event("on_train_end", metrics=metrics)
        return metrics
