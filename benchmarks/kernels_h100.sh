#!/usr/bin/env bash
# Issue #11 on the device machine: kernel classes and roofline of detr fp16 b8, swin_t fp32 b1 and llama2 fp16
# b1 (flow=torch), and CUDA-graph coverage of swin_t and gpt2 under flow=inductor flow.mode=reduce-overhead.
# Each cell is one run directory under $SWEEP; then the report (kernels.md, kernel_classes.csv, roofline.csv,
# roofline.png/pdf) is made over them, and every distinct kernel name with its class is listed (to extend
# tests/fixtures/kernel_names.yaml). Packs summaries, tables and the report into $OUT/kernels.tgz (traces and
# kernels.parquet left out; kernel_names.csv holds the names).
#   device run (carry .device/core):      bash benchmarks/kernels_h100.sh
#   some cells only:                       CELLS="detr swin_t_ro" bash benchmarks/kernels_h100.sh
# Then here: unpack into docs/results/kernels-h100/ and remake the report from the committed data:
#   python -m ngbench.report docs/results/kernels-h100 --out docs/results/kernels-h100/report
set -uo pipefail
OUT=${OUT:-/tmp/ngbench-out}
SWEEP=${SWEEP:-/tmp/kernels-h100}
CELLS=${CELLS:-"detr swin_t llama2 swin_t_ro gpt2_ro"}
mkdir -p "$OUT" "$SWEEP"
[[ -f .device/core/install.sh ]] && bash .device/core/install.sh > "$OUT/install.log" 2>&1
export PYTHONWARNINGS=ignore KINETO_LOG_LEVEL=5 HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
cell() {  # name, then overrides
  local name=$1; shift
  echo "== $name $(date +%T)" >> "$OUT/kernels.log"
  timeout ${CELL_T:-240} python -m ngbench platform=cuda iters=20 "$@" hydra.run.dir="$SWEEP/$name" \
    >> "$OUT/kernels.log" 2>&1
  echo "== $name rc=$? $(date +%T)" >> "$OUT/kernels.log"
}
for c in $CELLS; do
  case $c in
    detr)      cell detr-fp16-b8 model=detr precision=fp16 batch_size=8 ;;
    swin_t)    cell swin_t-fp32-b1 model=swin_t precision=fp32 batch_size=1 ;;
    llama2)    cell llama2-fp16-b1 model=llama2 precision=fp16 batch_size=1 ;;
    swin_t_ro) cell swin_t-inductor-ro model=swin_t precision=fp32 flow=inductor flow.mode=reduce-overhead ;;
    gpt2_ro)   cell gpt2-inductor-ro model=gpt2 precision=fp32 flow=inductor flow.mode=reduce-overhead ;;
    *)         echo "unknown cell $c (valid: detr swin_t llama2 swin_t_ro gpt2_ro)" >> "$OUT/kernels.log" ;;
  esac
done
timeout 120 python -m ngbench.report "$SWEEP" >> "$OUT/kernels.log" 2>&1
python - "$SWEEP" "$OUT/kernel_names.csv" <<'PY' >> "$OUT/kernels.log" 2>&1
import sys, pathlib, pandas as pd
frames = [pd.read_parquet(p, columns=["model", "flow", "op", "op_group", "kernel", "kernel_class", "device_us"])
          for p in pathlib.Path(sys.argv[1]).rglob("kernels.parquet")]
names = pd.concat(frames).groupby(["kernel", "kernel_class"], as_index=False).agg(
    instances=("kernel", "size"), device_us=("device_us", "sum"), models=("model", lambda m: " ".join(sorted(set(m)))),
    ops=("op", lambda o: " ".join(sorted(set(o))[:5])))
names.sort_values("device_us", ascending=False).to_csv(sys.argv[2], index=False)
print(f"{len(names)} distinct kernel names, {int((names['kernel_class'] == 'other').sum())} of class other")
PY
(cd "$SWEEP" && tar czf "$OUT/kernels.tgz" --exclude='trace*' --exclude='kernels.parquet' --exclude='.hydra' .)
grep -E "^== |coverage|warning|Error" "$OUT/kernels.log" | cut -c1-200
python - "$SWEEP" <<'PY'
import json, sys, pathlib
for p in sorted(pathlib.Path(sys.argv[1]).glob("*/summary.json")):
    s = json.load(open(p))
    if s.get("status") != "ok":
        print(p.parent.name, "FAILED", s.get("error", "")[:150]); continue
    k, r, c = s.get("kernel_classes") or {}, s.get("roofline") or {}, s.get("coverage") or {}
    gemm = (k.get("groups") or {}).get("GEMM") or {}
    print(f"{p.parent.name}: clean {s['clean']['median_ms']:.2f} ms | coverage {c.get('device_pct', 0):.1f}% | "
          f"GEMM device {s.get('gemm_pct_device', 0):.1f}% by op, {k.get('gemm_class_pct', 0):.1f}% by kernel | "
          f"GEMM other classes {gemm.get('other_class_ms')} | bandwidth {r.get('bandwidth_gbs')}")
PY
