#!/usr/bin/env bash
# Issues #13 and #15 on the GPU machine, in parts that each fit one 10-minute device call (the machine keeps its
# disk while warm, so a later part finds the ONNX cache and the sweeps' finished cells):
#   install  the staged wheels (../shared/device/README.md; onnxruntime-gpu's parts sent before)
#   tests    the GPU test tier, `pytest -m gpu`, its junit in $OUT/gpu-junit.xml
#   user     the README's command as typed, `python -m ngbench model=llama2 flow=ort +quant=int8`, timed
#            (a second `user` finds the export and the int8 model in the cache)
#   <target> a Makefile target's sweep (fig5 fig6 fig7 fig8 fig9 table1 table4 table5), timed, its
#            overrides as the Makefile has them; the report is made on the CPU machine from what comes back
#   calibrate  the profiler-cost calibration, forced, outside any profiler (cProfile included) of ours;
#            later runs read it from the cache (outputs/calibration)
#   repeat   the same cell (swin_t fp32 b1, gpt2 fp16 b1) in two separate processes each (issue #9's check)
#   cprofile one mask_rcnn fp16 b1 run under cProfile, its profile and saved trace into $OUT (where the
#            post-processing time goes)
#   holdout  the fidelity sweep over six models that are not in it (issue #9: the check repeated elsewhere)
#   traces   each fidelity/holdout cell's per-block raw traces (made when TRACES=1: save_trace=true and
#            NGBENCH_KEEP_BLOCK_TRACES=1) with its summary, into $OUT/traces.tgz (benchmarks/rebuild_costs.py)
#   fig7llama2  fig7's four ONNX Runtime cells of Llama-2 (LLAMA_BATCHES), each export removed after its cell
#   pack     each sweep's directory and the user and repeat runs, traces left out, into $OUT
# Each step's start, end and exit code go to $OUT/suite.log (benchmarks/suite_table.py reads it).
#   PARTS="install tests user" OUT=$OUT bash benchmarks/suite_h100.sh
set -uo pipefail
OUT=${OUT:-/tmp/ngbench-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 PYTHONWARNINGS=ignore
LOG="$OUT/suite.log"
SWEEP="python -m ngbench --config-dir sweeps -m"
declare -A TARGET=(
  [fig5]="zoo platform=cuda" [table1]="zoo platform=cuda" [table4]="zoo platform=cuda" [fig6]="zoo"
  [fig7]="flows" [fig8]="fusion" [table5]="fusion" [fig9]="fig9" [fig9int8]="fig9 +quant=int8"
  [fidelity]="fidelity"
  [holdout]="fidelity model=bert,swin_s,swin_b,vit_l16,maskformer,gpt2_large hydra.sweep.dir=outputs/sweeps/holdout")

step() {  # step NAME TIMEOUT_S COMMAND...: run, time and log one step
  local name=$1 limit=$2; shift 2
  local began_ns; began_ns=$(date +%s%N)
  echo "== $name start $(date +%T)" | tee -a "$LOG"
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  echo "== $name end rc=$rc ms=$(( ($(date +%s%N) - began_ns) / 1000000 ))" | tee -a "$LOG"
  tail -3 "$OUT/$name.log"
}

for part in ${PARTS:-install tests user}; do
  case $part in
    install) step install 300 bash .device/core/install.sh
             nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee -a "$LOG" ;;
    tests)   step tests "${TESTS_T:-300}" bash benchmarks/gpu_tests.sh ;;
    user)    n=$(( $(ls -d outputs/runs/*llama2*ort* 2>/dev/null | wc -l) + 1 ))    # the command as typed
             step "user$n" "${USER_T:-540}" /usr/bin/time -v python -m ngbench model=llama2 flow=ort +quant=int8
             grep -E "Maximum resident|Elapsed" "$OUT/user$n.log" | tee -a "$LOG"
             du -sh outputs/onnx_cache/* 2>/dev/null | tee -a "$LOG" ;;
    calibrate) step calibrate 120 python -c "
from ngbench.measure.calibration import costs_for
costs, note = costs_for('force', 'outputs/calibration', 'cuda:0', ('op', 'runtime', 'driver'))
print('calibration', note['costs_us'], note.get('host_slowdown'))"
             tail -1 "$OUT/calibrate.log" | tee -a "$LOG" ;;
    repeat)  for cell in "swin_t fp32" "gpt2 fp16"; do
               set -- $cell
               for k in a b; do
                 step "repeat-$1-$k" 120 python -m ngbench model=$1 precision=$2 batch_size=1 platform=cuda \
                   hydra.run.dir="outputs/repeat/$1-$2-$k"
               done
             done ;;
    cprofile) step cprofile 300 python -m cProfile -o "$OUT/mask_rcnn.prof" -m ngbench model=mask_rcnn \
               platform=cuda save_trace=true hydra.run.dir=outputs/cprofile/mask_rcnn
             gzip -c outputs/cprofile/mask_rcnn/trace.json > "$OUT/mask_rcnn-trace.json.gz" 2>/dev/null || true ;;
    fig7llama2)  # fig7's ONNX Runtime cells of Llama-2, one batch size a step (LLAMA_BATCHES="1 2" picks some): the
             # paper sweeps export a symbolic batch axis (flow.dynamic_batch), so the first step's 27 GB fp32 export
             # serves the others; the host's 64 GB disk holds one, so it is removed after the last (KEEP_EXPORT=1 keeps it)
             for b in ${LLAMA_BATCHES:-1 2 4 8}; do
               step "fig7-llama2-ort-b$b" "${FIG7_T:-540}" $SWEEP --config-name flows model=llama2 flow=ort batch_size="$b" ${ARGS:-}
             done
             [[ ${KEEP_EXPORT:-0} == 1 ]] || rm -rf outputs/onnx_cache/llama2-* ;;
    traces)  (cd outputs/sweeps && find fidelity holdout -name "trace-block*.json" -o -name summary.json 2>/dev/null \
               | tar czf "$OUT/traces.tgz" -T -) ; ls -la "$OUT/traces.tgz" | tee -a "$LOG" ;;
    pack)    ls -d outputs/runs/*llama2*ort* >/dev/null 2>&1 && \
               tar czf "$OUT/user.tgz" --exclude="trace*.json" outputs/runs/*llama2*ort*
             [ -d outputs/repeat ] && tar czf "$OUT/repeat.tgz" --exclude="trace*.json" -C outputs repeat
             for dir in outputs/sweeps/*/; do
               name=$(basename "$dir")
               tar czf - --exclude="trace*.json" -C outputs/sweeps "$name" | split -b 15m -d - "$OUT/$name.tgz.part"
             done
             ls -la "$OUT" ;;
    *)       spec=${TARGET[$part]:-}
             [[ -n $spec ]] || { echo "unknown part $part"; exit 2; }
             limit_var="${part^^}_T"
             # shellcheck disable=SC2086 - the spec is a config name and Hydra overrides
             keep=() ; [[ ${TRACES:-0} == 1 ]] && keep=(save_trace=true) && export NGBENCH_KEEP_BLOCK_TRACES=1
             step "$part" "${!limit_var:-300}" $SWEEP --config-name $spec ${ARGS:-} "${keep[@]}" ;;
  esac
done
grep -E "^== .* end" "$LOG"
