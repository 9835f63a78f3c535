"""TensorBoard logging of a training run, built on the callbacks (engine/callbacks.py).

``mirrordet train tensorboard=True`` (or ``TensorBoardLogger().attach(callbacks)``) writes event files into the
run folder: every loss term (``train/<name>``), every validation metric (``metrics/<name>``), the learning rate
(``lr/pg0``) per epoch, and the plots of the run's final validation (``val_batch0.png``, the PR curve, the
confusion matrix) as images. View them with ``tensorboard --logdir runs``. Needs the optional ``tensorboard``
package (``pip install "mirrordet[tensorboard]"``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mirrordet.engine.callbacks import RunLogger
from mirrordet.utils.errors import ConfigError

IMAGES = ("val_batch0.png", "PR_curve.png", "confusion_matrix.png")


def check_tensorboard() -> None:
    """Raise ConfigError when the tensorboard package (needed by SummaryWriter) is missing."""
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raise ConfigError("tensorboard=True needs the tensorboard package: pip install tensorboard") from None


class TensorBoardLogger(RunLogger):
    """Writes the run's scalars and final plots to TensorBoard event files in ``save_dir``."""

    def __init__(self) -> None:
        check_tensorboard()
        self.writer: Any = None

    def start(self, trainer: Any, **_: Any) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(trainer.save_dir))

    def epoch_end(self, trainer: Any, epoch: int, losses: dict[str, float], metrics: dict[str, Any], lr: float,
                  **_: Any) -> None:
        step = epoch + 1
        for name, value in losses.items():
            self.writer.add_scalar(f"train/{name}", value, step)
        for name, value in metrics.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(name if "/" in name else f"metrics/{name}", value, step)
        self.writer.add_scalar("lr/pg0", lr, step)
        self.writer.flush()

    def end(self, trainer: Any, **_: Any) -> None:
        import cv2

        for name in IMAGES:
            path = Path(trainer.save_dir) / name
            img = cv2.imread(str(path)) if path.is_file() else None
            if img is not None:
                self.writer.add_image(f"val/{path.stem}", img[..., ::-1].copy(), trainer.plan.epochs, dataformats="HWC")
        self.writer.close()
