#!/usr/bin/env bash
# One device call (../shared/device/README.md): install the staged wheels, run the sweeps of sweeps/ named in
# STEPS, each under a timeout, and pack each sweep's directory (traces left out) into $OUT for the report to be
# made on this side. A call has a time limit and a big sweep outlasts it: every sweep sets resume=true, so the
# next call, carrying the unpacked directory back in as outputs/sweeps/<name>, skips the cells that finished.
#   STEPS=fidelity OUT=$OUT bash benchmarks/gpu_session.sh
#   STEPS="fig9 fig9:+quant=int8" ARGS="model.seq_len=512,2048,8192" FIG9_T=300 OUT=$OUT bash benchmarks/gpu_session.sh
# A step is a sweep config name, with ':' and one more Hydra override after it if needed; ARGS (space
# separated) go to every step. <NAME>_T is a step's hard timeout in seconds (default 300): a cell cut off there
# leaves no half-written file, and the next call redoes it.
set -uo pipefail
OUT=${OUT:-/tmp/ngbench-out}
mkdir -p "$OUT"
bash .device/core/install.sh > "$OUT/install.log" 2>&1 || tail -20 "$OUT/install.log"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv >> "$OUT/install.log"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
names=()
for step in ${STEPS:-fidelity}; do
  name=${step%%:*}
  extra=; [[ $step == *:* ]] && extra=${step#*:}
  limit_var="${name^^}_T"
  echo "== $step $(date +%T)" >> "$OUT/run.log"
  timeout "${!limit_var:-300}" python -m ngbench --config-dir sweeps --config-name "$name" -m $extra ${ARGS:-} \
    >> "$OUT/run.log" 2>&1
  echo "== $step ended rc=$? $(date +%T)" >> "$OUT/run.log"
  [[ " ${names[*]} " == *" $name "* ]] || names+=("$name")
done
# $OUT takes at most 8 files of 16 MiB: a big sweep's archive comes back in 15 MB parts (cat them to unpack).
for name in "${names[@]}"; do
  tar czf - --exclude="trace*.json" -C outputs/sweeps "$name" | split -b 15m -d - "$OUT/$name.tgz.part"
done
grep -E "^== |cells (ok|failed)|^failed:" "$OUT/run.log"
