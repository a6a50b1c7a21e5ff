#!/usr/bin/env bash
# GPU evidence for `python -m ngbench.analyze` (issue #14) in one device call of about 5 minutes, on a machine
# with 2 GPUs (nvidia-h100-x2; on one GPU the DDP pair is skipped). Writes under $OUT: log.txt, gpu.tgz (the
# small real traces of tests/fixtures/traces/gpu, their analyses, ngbench's own tiny CUDA run with its
# trace.json) and resnet50_train.json.gz with its analysis in analyze-resnet50/ inside gpu.tgz.
# Wheels it needs that the GPU machine lacks (see benchmarks/README.md): WHEELS=.device/analyze (ijson,
# orjson, rich, HolisticTraceAnalysis + plotly, narwhals, psutil) and .device/core (hydra, omegaconf, antlr4).
set -uo pipefail
OUT=${OUT:-/tmp/ngbench-out}
WHEELS=${WHEELS:-.device/analyze}
export PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore HF_HUB_OFFLINE=1 KINETO_LOG_LEVEL=5
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "$WHEELS"/*.whl .device/core/*.whl \
  > /dev/null 2>&1
export PYTHONPATH=/tmp/site:$PWD
W=/tmp/analyze-gpu; rm -rf $W; mkdir -p $W/fx $W/an
LOG=$OUT/log.txt
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$LOG"
python3 -c "import torch, ijson, orjson, hydra; print('torch', torch.__version__, 'ijson', ijson.backend)" >> "$LOG" 2>&1
echo "== fixtures $(date +%T)" >> "$LOG"
timeout 200 python3 tests/fixtures/traces/gpu/record.py $W/fx >> "$LOG" 2>&1
echo "== resnet50 $(date +%T)" >> "$LOG"
timeout 120 python3 benchmarks/record_resnet50_trace.py --device cuda --batch-size 64 \
  --out $W/resnet50_train.json.gz >> "$LOG" 2>&1
echo "== ngbench's own tiny run $(date +%T)" >> "$LOG"
timeout 150 python3 -m ngbench model=gpt2 'model.overrides=${model.tiny}' iters=3 profile_iters=3 blocks=1 \
  min_time_s=0 profile_warmup=1 warmup=2 platform=cuda calibration.mode=off save_trace=true \
  hydra.run.dir=$W/own >> "$LOG" 2>&1
echo "== analyze $(date +%T)" >> "$LOG"
for f in $W/fx/*.json.gz $W/resnet50_train.json.gz $W/own/trace.json; do
  name=$(basename "$f" .gz); name=${name%.json}
  extra=(); [[ $name == resnet50_train ]] && extra=(--model resnet50 --batch-size 64)
  timeout 120 python3 -m ngbench.analyze "$f" --out $W/an/$name "${extra[@]}" >> "$LOG" 2>&1 \
    || echo "analyze $name failed" >> "$LOG"
done
echo "== HTA on ngbench's trace.json $(date +%T)" >> "$LOG"
mkdir -p $W/hta && cp $W/own/trace.json $W/hta/ && timeout 90 python3 - >> "$LOG" 2>&1 <<'PY'
from hta.trace_analysis import TraceAnalysis
analysis = TraceAnalysis(trace_dir="/tmp/analyze-gpu/hta")
print("HTA iterations", sorted(set(analysis.t.get_trace(0)["iteration"])))
print(analysis.get_gpu_kernel_breakdown(visualize=False)[0])
PY
cp $W/own/ops.parquet $W/own_ops.parquet && cp $W/own/summary.json $W/own_summary.json
gzip -c $W/own/trace.json > $W/own_trace.json.gz
tar czf "$OUT/gpu.tgz" -C $W fx an own_ops.parquet own_summary.json own_trace.json.gz 2>> "$LOG"
cp $W/resnet50_train.json.gz "$OUT/" 2>> "$LOG"
echo "== done $(date +%T)" >> "$LOG"
grep -E "^(==|recorded|.*failed|HTA|torch|written)" "$LOG"
