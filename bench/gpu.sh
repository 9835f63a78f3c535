#!/usr/bin/env bash
# The prepared GPU check (issue #21), for a session that has a CUDA device: AMP training throughput and FP16
# predict of yolov8n at 640 (mirrordet and, with UL_PY=/path/to/python of an Ultralytics venv, Ultralytics),
# then the tests that run on CUDA (they skip on CPU). About 5 minutes on an H200-class GPU.
#   bash bench/gpu.sh              # on the device
#   bash bench/gpu.sh --dry-run    # on a CPU machine: every step at tiny sizes, to check the script itself
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--dry-run" ]; then
  python bench/bench_gpu.py --dry-run ${UL_PY:+--ultralytics-python "$UL_PY"}
  python -m pytest -q tests/engine/test_amp.py
  exit 0
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))"
python bench/bench_gpu.py --device 0 ${UL_PY:+--ultralytics-python "$UL_PY"}
python -m pytest -q tests/engine/test_amp.py tests/engine/test_ddp.py
