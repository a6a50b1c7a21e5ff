#!/usr/bin/env bash
# The GPU test tier (`pytest -m gpu`, tests/test_gpu.py) in one device call, from the repo root on the GPU
# machine: installs the staged wheels and ngbench (.device/core/install.sh: hydra, omegaconf, bitsandbytes, and
# onnxruntime-gpu from parts sent in earlier calls; pytest is in the machine's image), then runs the tier and
# writes $OUT/gpu-junit.xml (committed as docs/results/gpu-tests-h100.xml) and $OUT/gpu-tests.log. About 5
# minutes on one H100. Exit code: pytest's.
#   OUT=$OUT bash benchmarks/gpu_tests.sh
set -uo pipefail
OUT=${OUT:-/tmp/ngbench-out}
mkdir -p "$OUT"
LOG=$OUT/gpu-tests.log
bash .device/core/install.sh > "$OUT/install.log" 2>&1 || tail -20 "$OUT/install.log"
python -c 'import pytest' 2>/dev/null || { echo "gpu_tests.sh: pytest is not installed on this machine" >&2; exit 2; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$LOG"
python -c 'import torch, pytest; print("torch", torch.__version__, "cuda", torch.version.cuda, "pytest", pytest.__version__)' \
  >> "$LOG" 2>&1
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
python -m pytest -m gpu -v -rA -p no:cacheprovider --junitxml="$OUT/gpu-junit.xml" tests/test_gpu.py 2>&1 | tee -a "$LOG"
status=${PIPESTATUS[0]}
echo "gpu tier: pytest exit code $status (junit: $OUT/gpu-junit.xml)" | tee -a "$LOG"
exit "$status"
