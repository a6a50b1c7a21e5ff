#!/usr/bin/env bash
# The GPU evidence in one device command (see ../shared/device/README.md): install, then the fidelity,
# zoo and flows benchmarks, each with a deadline so that the whole fits one 10-minute call.
# Writes run.log and the benchmarks' .md/.json files under $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/ngbench-out}
mkdir -p "$OUT"
bash .device/core/install.sh > "$OUT/run.log" 2>&1 || tail -20 "$OUT/run.log"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv >> "$OUT/run.log"
cd benchmarks
export PYTHONUNBUFFERED=1 KINETO_LOG_LEVEL=5 PYTHONWARNINGS=ignore HF_HUB_OFFLINE=1
timeout 230 python fidelity.py --iters 20 --profile-iters 5 --deadline-s ${FIDELITY_S:-160} \
    --out "$OUT/fidelity-h100.md" >> "$OUT/run.log" 2>&1
timeout 260 python zoo.py --reuse "$OUT/fidelity-h100.json" --deadline-s ${ZOO_S:-180} \
    --out "$OUT/zoo-h100.md" >> "$OUT/run.log" 2>&1
timeout 200 python flows.py --models ${FLOW_MODELS:-swin_t:fp32,segformer:fp32,detr:fp32,gpt2_xl:fp16} \
    --flows ${FLOWS:-torch,inductor} --deadline-s ${FLOWS_S:-120} --out "$OUT/flows-h100.md" >> "$OUT/run.log" 2>&1
grep -hE "^\|" "$OUT"/*.md | cut -c1-160
