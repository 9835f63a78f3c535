"""Trainer: one loop for every model family (the loss is chosen by the model's head).

Per iteration: warmup -> forward (CUDA AMP when enabled) -> loss -> backward -> every
``accumulate`` iterations: unscale, clip, step, EMA update. Per epoch: LR schedule step,
validation of the EMA weights, results.csv row, last.pt / best.pt (atomic), results.png.
"""

from __future__ import annotations

import math
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
import yaml
from torch import nn
from tqdm import tqdm

from mirrordet import __version__
from mirrordet.engine.callbacks_io import ResultsCSV
from mirrordet.engine.checkpoint import CKPT_FORMAT, load_checkpoint, save_checkpoint, strip_for_inference
from mirrordet.engine.ema import ModelEMA
from mirrordet.engine.optim import build_lr_lambda, build_optimizer, optimizer_momentum, warmup_step
from mirrordet.engine.run_dir import run_dir
from mirrordet.engine.setup import check_classes, check_imgsz, resolve_settings
from mirrordet.engine.tasks import task_for
from mirrordet.nn.graph import ModelGraph, build_model
from mirrordet.utils.errors import ConfigError, MirrordetError
from mirrordet.utils.files import atomic_write_text
from mirrordet.utils.log import LOGGER
from mirrordet.utils.torch_utils import get_rng_state, init_seeds, select_device, set_rng_state

class NonFiniteLossError(MirrordetError):
    """Too many consecutive non-finite losses: the run stops (last.pt stays usable)."""


class Trainer:
    """Trains a model described by ``overrides`` (see cfg/default.yaml for every key).

    Args:
        overrides: settings on top of the defaults (and the dataset YAML's ``defaults:``).
        model: an already built :class:`mirrordet.model.Model` to train (its ``model`` graph).
    """

    def __init__(self, overrides: Mapping[str, Any], model: Any = None) -> None:
        overrides = dict(overrides)
        self.resume_ckpt: dict | None = None
        if overrides.get("resume"):
            overrides = self._resume_overrides(overrides)
        self.cfg, self.data = resolve_settings(overrides)
        cfg = self.cfg
        self.device = select_device(cfg["device"])
        init_seeds(cfg["seed"], cfg["deterministic"])
        self.names = dict(self.data["names"])
        self.model = self._build_model(model)
        self.task = task_for(self.model, self.data)
        self.stride = int(max(self.model.stride.max().item(), 32))
        self.imgsz = check_imgsz(cfg["imgsz"], self.stride)
        self.amp = bool(cfg["amp"]) and self.device.type == "cuda"
        if self.resume_ckpt is not None:
            self.save_dir = Path(self.resume_ckpt["train_args"]["save_dir"])
        else:
            self.save_dir = run_dir(self.model.task, "train", cfg["project"], cfg["name"], cfg["exist_ok"])
        self.wdir = self.save_dir / "weights"
        self.wdir.mkdir(parents=True, exist_ok=True)

    # ---- set-up --------------------------------------------------------------------------------
    def _resume_overrides(self, overrides: dict) -> dict:
        path = overrides.get("model")
        if not path or Path(str(path)).suffix != ".pt":
            raise ConfigError("resume=True needs model=<run>/weights/last.pt")
        ckpt = load_checkpoint(path)
        args = dict(ckpt.get("train_args") or {})
        if ckpt.get("optimizer") is None or "save_dir" not in args:
            raise ConfigError(f"{path} holds no training state (it was stripped for inference); resume from last.pt")
        self.resume_ckpt = ckpt
        keep = {k: overrides[k] for k in ("device", "workers", "batch") if k in overrides}
        args.pop("save_dir", None)
        return {**args, **keep, "model": str(path), "resume": True}

    def _build_model(self, model: Any) -> ModelGraph:
        cfg, nc = self.cfg, int(self.data["nc"])
        if self.resume_ckpt is not None:
            ck = self.resume_ckpt
            net = ModelGraph(ck["model_yaml"], nc=nc, scale=ck["model_cfg"].get("scale"), names=self.names)
            net.load_state_dict(ck["train_weights"])
            return net.to(self.device)
        if model is not None and getattr(model, "ckpt", None) is None:
            net = model.model
            if net.nc != nc:
                net = build_model(model.source, nc=nc, scale=cfg["scale"] or net.scale, names=self.names)
        elif str(cfg["model"]).endswith(".pt"):
            from mirrordet.model import load_weights

            src, _ = load_weights(cfg["model"])  # fine-tune: same architecture, new classes if needed
            net = ModelGraph(src.yaml_text, nc=nc, scale=src.scale, names=self.names)
            own = net.state_dict()
            matched = {k: v for k, v in src.state_dict().items() if k in own and own[k].shape == v.shape}
            net.load_state_dict(matched, strict=False)
            LOGGER.info(f"Transferred {len(matched)}/{len(own)} tensors from {cfg['model']}")
        else:
            net = build_model(cfg["model"], nc=nc, scale=cfg["scale"], names=self.names)
        net.names = self.names
        check_classes(net.nc, self.data)
        return net.to(self.device)

    # ---- checkpoints ---------------------------------------------------------------------------
    def _checkpoint(self, epoch: int, best_fitness: float | None) -> dict:
        cpu = lambda sd: {k: v.detach().float().cpu().clone() if v.is_floating_point() else v.detach().cpu().clone()
                          for k, v in sd.items()}
        args = {**self.cfg, "save_dir": str(self.save_dir), "imgsz": self.imgsz}
        return {
            "format": CKPT_FORMAT, "model_yaml": self.model.yaml_text,
            "model_cfg": {"scale": self.model.scale, "nc": self.model.nc}, "names": dict(self.names),
            "model": cpu(self.ema.ema.state_dict()), "train_weights": cpu(self.model.state_dict()),
            "ema": {"updates": int(self.ema.updates)}, "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.amp else None, "epoch": epoch,
            "best_fitness": best_fitness, "train_args": args, "rng": get_rng_state(),
            "date": datetime.now(timezone.utc).isoformat(), "version": __version__,
        }

    # ---- the loop ------------------------------------------------------------------------------
    def train(self) -> dict[str, Any]:
        """Run the epochs; returns the final validation metrics of best.pt."""
        cfg, model, device = self.cfg, self.model, self.device
        batch = cfg["batch"]
        task = self.task
        train_set, train_loader = task.build_split(self.data, "train", cfg, self.imgsz, augment=True, batch=batch)
        val_set, val_loader = task.build_split(self.data, "val", cfg, self.imgsz, augment=False, batch=batch * 2)
        validator = task.validator(val_set, val_loader, cfg, self.save_dir)
        criterion = task.criterion(model, cfg)
        loss_names = task.loss_names
        nb, epochs = len(train_loader), cfg["epochs"]
        accumulate = max(round(cfg["nbs"] / batch), 1)
        weight_decay = cfg["weight_decay"] * batch * accumulate / cfg["nbs"]
        iterations = math.ceil(len(train_set) / max(batch, cfg["nbs"])) * epochs
        self.optimizer, opt_name, lr0 = build_optimizer(model, cfg["optimizer"], cfg["lr0"], cfg["momentum"],
                                                        weight_decay, iterations, model.nc)
        momentum = optimizer_momentum(self.optimizer)
        lr_lambda = build_lr_lambda(epochs, cfg["lrf"], cfg["cos_lr"])
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.ema = ModelEMA(model) if cfg["ema"] else _NoEMA(model)
        start_epoch, best_fitness = 0, None
        if self.resume_ckpt is not None:
            start_epoch, best_fitness = self._restore(self.resume_ckpt)
        # last_epoch=start-1 makes the constructor set the LR of epoch `start` (needs 'initial_lr' on resume)
        scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_lambda=lr_lambda, last_epoch=start_epoch - 1)
        csv = ResultsCSV(self.save_dir / "results.csv",
                         ["epoch", *(f"train/{n}" for n in loss_names), *task.metric_keys, "fitness", "lr/pg0",
                          "epoch_time"],
                         resume_epoch=start_epoch + 1 if self.resume_ckpt is not None else None)
        if self.resume_ckpt is None:
            from mirrordet.utils.versions import package_versions

            args = {**cfg, "imgsz": self.imgsz, "versions": package_versions()}  # versions: to repeat the run
            atomic_write_text(self.save_dir / "args.yaml", yaml.safe_dump(args, sort_keys=False))
            self._plot_labels(train_set)
        if start_epoch >= epochs:
            LOGGER.info(f"{self.save_dir} already finished {epochs} epochs; nothing to resume")
            return {}
        nw = max(round(cfg["warmup_epochs"] * nb), 100) if cfg["warmup_epochs"] > 0 else -1
        LOGGER.info(f"Training {Path(str(cfg['model'])).name} on {self.data.get('yaml_file')} for {epochs} epochs: "
                    f"imgsz {self.imgsz}, batch {batch} (accumulate {accumulate}), {opt_name}(lr={lr0:g}), "
                    f"device {device}, AMP {self.amp}, {len(train_set)} train / {len(val_set)} val images\n"
                    f"Logging results to {self.save_dir}")
        last_opt_step, bad_steps, patience_left = -1, 0, cfg["patience"] or float("inf")
        metrics: dict[str, Any] = {}
        for epoch in range(start_epoch, epochs):
            t_epoch = time.time()
            model.train()
            train_set.set_epoch(epoch)  # augmentation and shuffling depend on (seed, epoch) only: resumable
            if train_loader.generator is not None:
                train_loader.generator.manual_seed(cfg["seed"] + epoch)
            if epochs - epoch <= cfg["close_mosaic"] and getattr(train_set, "mosaic", 0) > 0:
                LOGGER.info("Closing mosaic augmentation")
                train_set.close_mosaic()
            mean_loss = torch.zeros(len(loss_names))
            bar = tqdm(enumerate(train_loader), total=nb, disable=not cfg["verbose"], dynamic_ncols=True,
                       desc=f"{epoch + 1}/{epochs}")
            self.optimizer.zero_grad()
            for i, batch_d in bar:
                ni = i + nb * epoch
                if ni <= nw:
                    warmup_step(self.optimizer, ni, nw, epoch, lr_lambda, lr0, cfg["warmup_bias_lr"], momentum,
                                cfg["warmup_momentum"])
                    accumulate = max(1, int(np.interp(ni, [0, nw], [1, cfg["nbs"] / batch]).round()))
                img = batch_d["img"].to(device, non_blocking=True).float() / 255
                targets = task.targets(batch_d, img, device)
                with torch.autocast(device_type=device.type, enabled=self.amp):
                    loss, items = criterion(model(img), targets)
                if not torch.isfinite(loss):
                    bad_steps += 1
                    LOGGER.warning(f"non-finite loss at epoch {epoch + 1} batch {i}: step skipped ({bad_steps} in a row)")
                    self.optimizer.zero_grad()
                    if bad_steps >= cfg["max_bad_steps"]:
                        raise NonFiniteLossError(f"{bad_steps} non-finite losses in a row; stopping. "
                                                 f"{self.wdir / 'last.pt'} holds the last good epoch")
                    continue
                bad_steps = 0
                self.scaler.scale(loss).backward()
                if ni - last_opt_step >= accumulate:
                    self._optimizer_step(cfg["grad_clip"])
                    last_opt_step = ni
                mean_loss = (mean_loss * i + items.cpu()) / (i + 1)
                bar.set_postfix({n: f"{v:.3f}" for n, v in zip(loss_names, mean_loss.tolist())}, refresh=False)
            if last_opt_step < nb * epoch + nb - 1 and bad_steps == 0:
                self._optimizer_step(cfg["grad_clip"])  # flush: no gradient is carried across epochs
                last_opt_step = nb * epoch + nb - 1
            lr = self.optimizer.param_groups[0]["lr"]
            scheduler.step()
            final = epoch + 1 == epochs
            if cfg["val"] or final:
                metrics = validator(self.ema.ema, device, verbose=False, plots=False, save_json=False)
            fit = metrics.get("fitness", 0.0)
            improved = best_fitness is None or fit >= best_fitness
            best_fitness = fit if improved else best_fitness
            epoch_time = time.time() - t_epoch
            csv.append({"epoch": epoch + 1, **{f"train/{n}": float(v) for n, v in zip(loss_names, mean_loss)},
                        **{k: float(metrics.get(k, 0.0)) for k in task.metric_keys}, "fitness": float(fit),
                        "lr/pg0": lr, "epoch_time": round(epoch_time, 3)})
            ckpt = self._checkpoint(epoch + 1, best_fitness)
            save_checkpoint(self.wdir / "last.pt", ckpt)
            if improved:
                save_checkpoint(self.wdir / "best.pt", strip_for_inference(ckpt))
            if cfg["save_period"] > 0 and (epoch + 1) % cfg["save_period"] == 0:
                save_checkpoint(self.wdir / f"epoch{epoch + 1}.pt", strip_for_inference(ckpt))
            shown = " ".join(f"{k.split('/')[-1]}={metrics.get(k, 0):.4f}" for k in task.metric_keys[-2:])
            LOGGER.info(f"epoch {epoch + 1}/{epochs}: " + " ".join(f"{n}={v:.4f}" for n, v in zip(loss_names, mean_loss))
                        + f" {shown} ({epoch_time:.1f}s)")
            if cfg["plots"]:
                from mirrordet.plotting.results import plot_results

                plot_results(self.save_dir / "results.csv")
            patience_left = cfg["patience"] if improved and cfg["patience"] else patience_left - 1
            if patience_left <= 0 and not final:
                LOGGER.info(f"Stopping early: no improvement in the last {cfg['patience']} epochs")
                break
        return self._final_validation(validator)

    def _optimizer_step(self, grad_clip: float) -> None:
        self.scaler.unscale_(self.optimizer)
        if grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm=grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad()
        self.ema.update(self.model)

    def _restore(self, ck: dict) -> tuple[int, float | None]:
        self.optimizer.load_state_dict(ck["optimizer"])
        if self.amp and ck.get("scaler"):
            self.scaler.load_state_dict(ck["scaler"])
        self.ema.ema.load_state_dict(ck["model"])
        self.ema.updates = int((ck.get("ema") or {}).get("updates", 0))
        start = int(ck["epoch"])
        if ck.get("rng"):
            set_rng_state(ck["rng"])
        LOGGER.info(f"Resuming {self.save_dir} from epoch {start + 1}")
        return start, ck.get("best_fitness")

    def _final_validation(self, validator: Any) -> dict[str, Any]:
        from mirrordet.model import load_weights

        best = self.wdir / "best.pt"
        model, _ = load_weights(best)
        LOGGER.info(f"Validating {best}")
        metrics = validator(model.to(self.device), self.device, verbose=self.cfg["verbose"], plots=self.cfg["plots"],
                            save_json=self.cfg["save_json"])
        LOGGER.info(f"Results saved to {self.save_dir}")
        return metrics

    def _plot_labels(self, dataset: Any) -> None:
        if not self.cfg["plots"]:
            return
        from mirrordet.plotting.labels import plot_labels

        arrays = self.task.label_arrays(dataset)
        if arrays is not None:
            plot_labels(*arrays, self.names, self.save_dir / "labels.png")


class _NoEMA:
    """Stand-in when ``ema=False``: validation and checkpoints use the raw weights."""

    def __init__(self, model: nn.Module) -> None:
        self.ema, self.updates = model, 0

    def update(self, model: nn.Module) -> None:
        pass
