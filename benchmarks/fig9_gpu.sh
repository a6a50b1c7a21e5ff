#!/usr/bin/env bash
# Figure 9 on the device machine (LLM.int8() vs fp16, Llama-3-8B, GEMM / non-GEMM over sequence lengths):
# the fp16 and the +quant=int8 sweeps into one directory, then the report; packs what came out into
# $OUT/fig9.tgz (traces left out). SEQ_LENS defaults to three of the paper's five lengths so that both
# sweeps fit one 10-minute device call (the LLM.int8() conversion alone takes ~60 s per cell).
#   device run (carry .device/core):  bash benchmarks/fig9_gpu.sh
#   more lengths, report made here later:  SEQ_LENS=1024,4096 REPORT=0 bash benchmarks/fig9_gpu.sh
set -uo pipefail
OUT=${OUT:-/tmp/ngbench-out}
SEQ_LENS=${SEQ_LENS:-512,2048,8192}
SWEEP=${SWEEP:-/tmp/fig9}
mkdir -p "$OUT"
bash .device/core/install.sh > "$OUT/install.log" 2>&1
export PYTHONWARNINGS=ignore KINETO_LOG_LEVEL=5
timeout 150 python -m ngbench --config-dir sweeps --config-name fig9 -m model.seq_len=$SEQ_LENS \
    hydra.sweep.dir=$SWEEP iters=10 > "$OUT/fig9.log" 2>&1
timeout 330 python -m ngbench --config-dir sweeps --config-name fig9 -m model.seq_len=$SEQ_LENS +quant=int8 \
    hydra.sweep.dir=$SWEEP iters=10 >> "$OUT/fig9.log" 2>&1
[[ ${REPORT:-1} == 1 ]] && timeout 60 python -m ngbench.report $SWEEP >> "$OUT/fig9.log" 2>&1
(cd $SWEEP && tar czf "$OUT/fig9.tgz" --exclude='trace*' .)
grep -E "unmapped|clean latency|Error" "$OUT/fig9.log"
