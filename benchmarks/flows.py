"""Deployment flows side by side (issue #4): eager vs inductor vs ORT (CUDA provider) at batch 1 for the
paper's fusion and LLM models, printing non-GEMM ms and %, the fusion rate against eager, and for ORT the
host time of its nodes beside the GPU time of their kernels, per group.

    python benchmarks/flows.py --out docs/results/flows-h100.md
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from common import markdown, publish, run_cell

MODELS = "swin_t:fp32,swin_b:fp32,detr:fp32,segformer:fp32,gpt2_xl:fp16,llama2:fp16"
FLOWS = ["torch", "inductor", "ort"]
COLUMNS = ["model", "precision", "flow", "clean ms", "prepare s", "non-GEMM ms (wall)", "non-GEMM %",
           "fusion rate %", "with GEMM %", "non-GEMM only %", "GPU busy %", "status"]
ORT_COLUMNS = ["model", "group", "host ms", "kernel ms", "wall ms", "nodes", "on CPU EP"]


def fusion_row(eager_ops, fused_ops) -> dict:
    from ngbench.fusion import fusion_summary

    summary = fusion_summary(eager_ops, fused_ops)
    return {"fusion rate %": f"{100 * summary.get('fusion_rate', 0):.1f}",
            "with GEMM %": f"{100 * summary.get('fusion_rate_with_gemm', 0):.1f}",
            "non-GEMM only %": f"{100 * summary.get('fusion_rate_with_non_gemm', 0):.1f}"}


def cell_row(summary: dict, ops) -> dict:
    from ngbench.fusion import non_gemm_time

    base = {"model": summary.get("model"), "precision": summary.get("precision"), "flow": summary.get("flow")}
    if summary.get("status") != "ok":
        return {**base, "status": summary.get("error", "failed")[:90]}
    non_gemm = non_gemm_time(ops)
    return {**base, "clean ms": f"{summary['clean']['median_ms']:.2f}",
            "prepare s": f"{summary['steps']['prepare_s']:.1f}",
            "non-GEMM ms (wall)": f"{non_gemm['non_gemm_ms']:.2f}", "non-GEMM %": f"{non_gemm['non_gemm_pct']:.1f}",
            "GPU busy %": f"{100 * summary['reconciliation']['device_busy_share']:.1f}", "status": "ok"}


def ort_rows(model: str, ops) -> list[dict]:
    iterations = max(ops["iteration"].nunique(), 1)
    rows = []
    for group, part in ops.groupby("group"):
        rows.append({"model": model, "group": group, "host ms": f"{part['host_us'].sum() / iterations / 1000:.3f}",
                     "kernel ms": f"{part['device_us'].sum() / iterations / 1000:.3f}",
                     "wall ms": f"{part['wall_us'].sum() / iterations / 1000:.3f}",
                     "nodes": int(len(part) // iterations),
                     "on CPU EP": int((part["placement"] == "CPUExecutionProvider").sum() // iterations)})
    return rows


def main() -> None:
    import pandas as pd

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=MODELS, help="model:precision,...")
    parser.add_argument("--flows", default=",".join(FLOWS))
    parser.add_argument("--platform", default="cuda")
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--profile-iters", type=int, default=3)
    parser.add_argument("--deadline-s", type=float, default=540, help="start no new model after this")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    began = time.perf_counter()
    rows, ort_table, summaries = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for item in args.models.split(","):
            model, precision = item.split(":")
            if time.perf_counter() - began > args.deadline_s:
                rows.append({"model": model, "precision": precision, "status": "not run: deadline"})
                continue
            eager = None
            for flow in args.flows.split(","):
                run_dir = Path(tmp) / f"{model}_{flow}"
                summary = run_cell([f"model={model}", f"precision={precision}", "batch_size=1", f"flow={flow}",
                                    f"platform={args.platform}", f"iters={args.iters}",
                                    f"profile_iters={args.profile_iters}", "warmup=3",
                                    f"flow.cache_dir={tmp}/onnx" if flow == "ort" else "warmup=3"], run_dir)
                summaries.append(summary)
                ops = pd.read_parquet(run_dir / "ops.parquet") if summary.get("status") == "ok" else None
                row = cell_row(summary, ops)
                if flow == "torch":
                    eager = ops
                elif ops is not None and eager is not None and flow == "inductor":
                    row.update(fusion_row(eager, ops))
                if flow == "ort" and ops is not None:
                    ort_table += ort_rows(model, ops)
                rows.append(row)
                print(markdown([row], COLUMNS).splitlines()[-1], flush=True)
    tables = (markdown(rows, COLUMNS) + "\n## ONNX Runtime (CUDA provider): host time of nodes vs GPU time of their "
              "kernels\n\n" + markdown(ort_table, ORT_COLUMNS))
    publish("Flows side by side, batch 1", tables, summaries, args.out)

if __name__ == "__main__":
    main()
