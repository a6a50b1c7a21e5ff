#!/usr/bin/env bash
# Issues #9, #11 and #14 on the GPU machine, in parts that each fit one 10-minute device call (the machine keeps
# its disk while warm, so later parts resume): install + force the profiler-cost calibration, the cost probe on
# GPT-2 and Swin-T ("probe"), the fidelity sweep with the rebuilt timeline ("fidelity", resumable), the same
# cell in two separate processes ("repeat"), the GPU zoo cells at batch 1 and 8 ("zoo"), the CUDA-graph cells
# of kernels_h100.sh ("graphs"), a ResNet-50 training trace analysed by ngbench.analyze ("resnet"), and
# packing the results ("pack"). WHEELS names the staged wheel folder under .device/ (default core).
#   PARTS="install probe fidelity" OUT=$OUT bash benchmarks/truth_gpu.sh
set -uo pipefail
OUT=${OUT:-/tmp/ngbench-out}
WORK=${WORK:-/root/ngb-truth}
mkdir -p "$OUT" "$WORK"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 PYTHONWARNINGS=ignore
CELL="${CELL:-}"
for part in ${PARTS:-install probe fidelity}; do
  echo "== $part $(date +%T)"
  case $part in
    install)  bash .device/${WHEELS:-core}/install.sh > "$WORK/install.log" 2>&1 || tail -30 "$WORK/install.log"
              nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv
              python -c "
from ngbench.measure.calibration import costs_for
costs, note = costs_for('force', 'outputs/calibration', 'cuda:0', ('op', 'runtime', 'driver'))
print('calibration', note['costs_us'])
import json; d = json.load(open(note['file']))
for loop in d['loops']['torch']: print('  ', loop)
" 2>&1 | grep -v USDT ;;
    probe)    for cell in "gpt2 fp16 1" "gpt2 fp32 8" "swin_t fp32 1"; do
                set -- $cell
                timeout 150 python benchmarks/profiler_cost_probe.py --model $1 --precision $2 --batch-size $3 \
                  --depth 3 --iters 20 --rounds 3 --out "$WORK/probe-$1-$2-b$3.json" 2>&1 | grep -v USDT
              done ;;
    fidelity) timeout ${FIDELITY_T:-560} python -m ngbench -m model=gpt2,vit_b16,swin_t,faster_rcnn,detr,segformer \
                batch_size=1,8 precision=fp32,fp16 platform=cuda $CELL resume=true \
                hydra.sweep.dir="$WORK/fidelity" > "$WORK/fidelity.log" 2>&1
              echo "fidelity rc=$?"; python benchmarks/cells_table.py "$WORK/fidelity" ;;
    repeat)   for cell in ${REPEAT_CELLS:-"swin_t fp32" "gpt2 fp16"}; do
                set -- $cell
                for k in a b; do
                  timeout 120 python -m ngbench model=$1 precision=$2 batch_size=1 platform=cuda $CELL \
                    hydra.run.dir="$WORK/repeat/$1-$2-$k" > "$WORK/repeat-$1-$k.log" 2>&1
                done
              done
              python benchmarks/cells_table.py "$WORK/repeat" ;;
    zoo)      timeout ${ZOO_T:-420} python -m ngbench --config-dir sweeps --config-name zoo -m platform=cuda \
                batch_size=1,8 ${ZOO_MODELS:+model=$ZOO_MODELS} hydra.sweep.dir="$WORK/zoo" > "$WORK/zoo.log" 2>&1
              echo "zoo rc=$?"; python benchmarks/cells_table.py "$WORK/zoo" ;;
    graphs)   SWEEP="$WORK/graphs" CELLS="swin_t_ro gpt2_ro" OUT="$WORK/graphs-out" bash benchmarks/kernels_h100.sh ;;
    resnet)   timeout 150 python benchmarks/record_resnet50_trace.py --device cuda --batch-size 64 \
                --out "$WORK/resnet50_train.json.gz" > "$WORK/resnet.log" 2>&1
              timeout 150 python -m ngbench.analyze "$WORK/resnet50_train.json.gz" --out "$WORK/analyze-resnet50" \
                --model resnet50 --batch-size 64 >> "$WORK/resnet.log" 2>&1
              tail -25 "$WORK/resnet.log" ;;
    pack)     cd "$WORK"
              for d in fidelity repeat zoo graphs analyze-resnet50; do
                [ -d $d ] && tar czf "$OUT/$d.tgz" --exclude=trace.json --exclude='*.onnx' $d
              done
              tar czf "$OUT/logs.tgz" *.log $(ls probe-*.json 2>/dev/null); cd - >/dev/null
              cp outputs/calibration/*.json "$OUT/" 2>/dev/null; ls -la "$OUT" ;;
    *)        echo "unknown part $part" ;;
  esac
done
