#!/usr/bin/env bash
# The GPU evidence in device commands (see ../shared/device/README.md and benchmarks/README.md): install,
# then the steps named in STEPS (default: fidelity zoo flows), each under a timeout so that the whole
# fits one 10-minute call. Writes run.log and the benchmarks' .md/.json files under $OUT.
#   STEPS="flows fidelity" FLOW_MODELS=swin_t:fp32,detr:fp32 FLOWS=torch,inductor,ort TAG=h100-part1 \
#     OUT=$OUT bash benchmarks/gpu_session.sh
# Each step: <NAME>_S = the deadline after which the script starts no new cell, <NAME>_T = the hard
# timeout (finished cells are saved as they end, so a timed-out step keeps them).
set -uo pipefail
OUT=${OUT:-/tmp/ngbench-out}
TAG=${TAG:-h100}
mkdir -p "$OUT"
bash .device/core/install.sh >> "$OUT/run.log" 2>&1 || tail -20 "$OUT/run.log"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv >> "$OUT/run.log"
cd benchmarks
export PYTHONUNBUFFERED=1 KINETO_LOG_LEVEL=5 PYTHONWARNINGS=ignore HF_HUB_OFFLINE=1
for step in ${STEPS:-fidelity zoo flows}; do
  echo "== $step $(date +%T)" >> "$OUT/run.log"
  case $step in
    fidelity) timeout ${FIDELITY_T:-230} python fidelity.py --iters 20 --profile-iters 5 \
                --deadline-s ${FIDELITY_S:-160} --out "$OUT/fidelity-$TAG.md" >> "$OUT/run.log" 2>&1 ;;
    zoo)      timeout ${ZOO_T:-260} python zoo.py --reuse "$OUT/fidelity-$TAG.json" --deadline-s ${ZOO_S:-180} \
                --out "$OUT/zoo-$TAG.md" >> "$OUT/run.log" 2>&1 ;;
    flows)    timeout ${FLOWS_T:-200} python flows.py --models ${FLOW_MODELS:-swin_t:fp32,segformer:fp32} \
                --flows ${FLOWS:-torch,inductor,ort} --deadline-s ${FLOWS_S:-120} --out "$OUT/flows-$TAG.md" \
                >> "$OUT/run.log" 2>&1 ;;
    *)        echo "unknown step $step (valid: fidelity zoo flows)" >> "$OUT/run.log" ;;
  esac
  echo "== $step ended rc=$? $(date +%T)" >> "$OUT/run.log"
done
grep -hE "^\|" "$OUT"/*.md | cut -c1-160
