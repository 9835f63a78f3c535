"""One training run of `mirrordet compare`, in its own process.

``python -m mirrordet.engine.compare_worker '<JSON settings>'`` trains with the settings (the same
keys as ``mirrordet train``) and then writes ``memory.json`` into the run folder: the peak
resident set size of the training process (data-loader worker processes not included), on
CUDA the peak memory allocated by torch, and the wall-clock seconds of the whole training
(``wall_s``: setup, epochs, validations and the final validation). A process of its own per run
keeps those peaks clean (nothing carried over from other runs) and gives every run the same fresh
interpreter state.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Sequence

MEMORY_FILE = "memory.json"


def main(argv: Sequence[str] | None = None) -> int:
    """Train once; returns 0, or 2 on a project error (the message is logged)."""
    from mirrordet.engine.profile import peak_rss_mb
    from mirrordet.engine.trainer import Trainer
    from mirrordet.utils.errors import MirrordetError
    from mirrordet.utils.files import atomic_write_text
    from mirrordet.utils.log import LOGGER, setup_logging

    argv = list(sys.argv[1:] if argv is None else argv)
    setup_logging()
    if len(argv) != 1:
        LOGGER.error("usage: python -m mirrordet.engine.compare_worker '<JSON settings>'")
        return 2
    start = time.time()
    try:
        trainer = Trainer(json.loads(argv[0]))
        trainer.train()
    except MirrordetError as e:
        LOGGER.error(f"mirrordet compare: training failed: {e}")
        return 2
    gpu = None
    if trainer.device.type == "cuda":
        import torch

        gpu = torch.cuda.max_memory_allocated(trainer.device) / 2**20
    memory = {"peak_rss_mb": peak_rss_mb(), "peak_gpu_mb": gpu, "wall_s": round(time.time() - start, 3)}
    atomic_write_text(trainer.save_dir / MEMORY_FILE, json.dumps(memory, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
