"""Deployment flows side by side (issue #4): eager vs inductor vs ORT (CUDA provider) at batch 1 for the
paper's fusion and LLM models, printing non-GEMM ms and %, the fusion rate against eager, and for ORT the
host time of its nodes beside the GPU time of their kernels, per group.

    python benchmarks/flows.py --out docs/results/flows-h100.md                      # on the GPU machine
    python benchmarks/flows.py --platform cpu --tiny --models gpt2:fp32 --out /tmp/f.md  # a quick CPU check
    python benchmarks/flows.py --combine part1.rows.json part2.rows.json --out flows-h100.md
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from common import environment_line, markdown, publish, run_cell, save

TITLE = "Flows side by side, batch 1"
MODELS = "swin_t:fp32,swin_b:fp32,detr:fp32,segformer:fp32,gpt2_xl:fp16,llama2:fp16"
FLOWS = ["torch", "inductor", "ort"]
COLUMNS = ["model", "precision", "flow", "clean ms", "prepare s", "profiled/clean", "non-GEMM ms (wall)", "non-GEMM %",
           "non-GEMM kernel ms", "non-GEMM kernel %", "fusion rate %", "with GEMM %", "non-GEMM only %",
           "GPU busy %", "status"]
ORT_COLUMNS = ["model", "op_group", "host ms", "kernel ms", "wall ms", "nodes", "on CPU EP"]
GEMM_FUSED_COLUMNS = ["model", "kernel", "op_group", "source ops", "per iteration"]


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
    return {**base, **summary_columns(summary), "clean ms": f"{summary['clean']['median_ms']:.2f}",
            "prepare s": f"{summary['steps']['prepare_s']:.1f}",
            "non-GEMM ms (wall)": f"{non_gemm['non_gemm_ms']:.2f}", "non-GEMM %": f"{non_gemm['non_gemm_pct']:.1f}",
            "GPU busy %": f"{100 * summary['reconciliation']['device_busy_share']:.1f}", "status": "ok"}


def summary_columns(summary: dict) -> dict:
    """The profiler's stretch and the non-GEMM time in the kernel (device) view, from summary.json alone.

    The wall columns are shares of the profiled run, which the ORT profiler stretches far more than
    Kineto stretches eager; kernel times are CUPTI's in every flow and comparable across flows. Non-GEMM is
    every group but GEMM and Idle, so an `[unattributed kernels]` row (group Other) counts here, where the
    wall columns (ngbench.fusion.non_gemm_time) leave it out; on flows-h100 such rows were ≤ 0.003 ms."""
    groups = {g: v for g, v in summary.get("groups", {}).items() if g not in ("GEMM", "Idle")}
    return {"profiled/clean": f"{summary['reconciliation']['profiled_over_clean']:.2f}",
            "non-GEMM kernel ms": f"{sum(v['device_ms'] for v in groups.values()):.2f}",
            "non-GEMM kernel %": f"{sum(v['device_pct'] for v in groups.values()):.1f}"}


def ort_rows(summary: dict, ops) -> list[dict]:
    """Per group: host, kernel and wall ms and nodes per inference (from summary.json), and how many of
    those nodes ran on the CPU provider (from the op rows)."""
    iterations = max(ops["iteration"].nunique(), 1)
    on_cpu = ops[ops["provider"] == "CPUExecutionProvider"].groupby("op_group").size() // iterations
    return [{"model": summary["model"], "op_group": group, "host ms": f"{totals['host_ms']:.3f}",
             "kernel ms": f"{totals['device_ms']:.3f}", "wall ms": f"{totals['wall_ms']:.3f}",
             "nodes": totals["ops"], "on CPU EP": int(on_cpu.get(group, 0))}
            for group, totals in sorted(summary["groups"].items())]


def gemm_fused_rows(model: str, ops, limit: int = 8) -> list[dict]:
    """The fused kernels of one Inductor iteration that the fusion rate counts as 'with a GEMM'."""
    from ngbench.fusion import fused_kernel_rows

    counted: dict[str, dict] = {}
    for row, _, with_gemm in fused_kernel_rows(ops):
        if with_gemm:
            entry = counted.setdefault(row.op, {
                "model": model, "kernel": str(row.op)[:60], "op_group": row.op_group, "per iteration": 0,
                "source ops": ", ".join(sorted(set(row.fused_ops)))[:120]})
            entry["per iteration"] += 1
    return sorted(counted.values(), key=lambda r: -r["per iteration"])[:limit]


def render(parts: dict) -> str:
    """The three markdown tables of one or several runs' rows."""
    return (markdown(parts["rows"], COLUMNS)
            + "\n## ONNX Runtime (CUDA provider): host time of nodes vs GPU time of their kernels\n\n"
            + markdown(parts["ort"], ORT_COLUMNS)
            + "\n## Inductor kernels counted as fused with a GEMM (one iteration, top 8 per model)\n\n"
            + markdown(parts["gemm_fused"], GEMM_FUSED_COLUMNS))


def save_parts(parts: dict, summaries: list[dict], out: Path | None, final: bool = False) -> None:
    """Write what has run so far (a timed-out run still leaves its finished cells); `final` also prints it."""
    if final:
        publish(TITLE, render(parts), summaries, out)
    elif out:
        save(out, f"# {TITLE}\n\n{environment_line(summaries)}\n\n{render(parts)}", summaries)
    if out:
        out.with_suffix(".rows.json").write_text(json.dumps(parts, indent=1))


def combine(paths: list[Path], out: Path | None) -> None:
    """One report from several runs' .rows.json (and their summaries' .json beside them)."""
    parts = {"rows": [], "ort": [], "gemm_fused": []}
    summaries = []
    for path in paths:
        loaded = json.loads(path.read_text())
        for key in parts:
            parts[key] += loaded.get(key, [])
        summaries += json.loads(Path(str(path).replace(".rows.json", ".json")).read_text())
    by_cell = {(s.get("model"), s.get("precision"), s.get("flow")): s for s in summaries if s.get("status") == "ok"}
    for row in parts["rows"]:          # runs saved before these columns existed get them from their summaries
        summary = by_cell.get((row.get("model"), row.get("precision"), row.get("flow")))
        if summary and "non-GEMM kernel ms" not in row:
            row.update(summary_columns(summary))
    save_parts(parts, summaries, out, final=True)


def main() -> None:
    import pandas as pd

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=MODELS, help="model:precision,...")
    parser.add_argument("--flows", default=",".join(FLOWS))
    parser.add_argument("--platform", default="cuda")
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--profile-iters", type=int, default=3)
    parser.add_argument("--deadline-s", type=float, default=540, help="start no new model after this")
    parser.add_argument("--tiny", action="store_true", help="shrink the models (CPU checks)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--combine", type=Path, nargs="+", default=None,
                        help="merge earlier runs' .rows.json files into --out instead of running")
    args = parser.parse_args()
    if args.combine:
        combine(args.combine, args.out)
        return
    began = time.perf_counter()
    parts = {"rows": [], "ort": [], "gemm_fused": []}
    rows, ort_table, summaries = parts["rows"], parts["ort"], []
    with tempfile.TemporaryDirectory() as tmp:
        for item in args.models.split(","):
            model, precision = item.split(":")
            if time.perf_counter() - began > args.deadline_s:
                rows.append({"model": model, "precision": precision, "status": "not run: deadline"})
                continue
            eager = None
            for flow in args.flows.split(","):
                run_dir = Path(tmp) / f"{model}_{flow}"
                overrides = [f"model={model}", f"precision={precision}", "batch_size=1", f"flow={flow}",
                             f"platform={args.platform}", f"iters={args.iters}", f"profile_iters={args.profile_iters}",
                             "warmup=3", *([f"flow.cache_dir={tmp}/onnx"] if flow == "ort" else []),
                             *(["model.overrides=${model.tiny}"] if args.tiny else [])]
                summary = run_cell(overrides, run_dir)
                summaries.append(summary)
                ops = pd.read_parquet(run_dir / "ops.parquet") if summary.get("status") == "ok" else None
                row = cell_row(summary, ops)
                if flow == "torch":
                    eager = ops
                elif ops is not None and eager is not None and flow == "inductor":
                    row.update(fusion_row(eager, ops))
                    parts["gemm_fused"] += gemm_fused_rows(model, ops)
                if flow == "ort" and ops is not None:
                    ort_table += ort_rows(summary, ops)
                rows.append(row)
                print(markdown([row], COLUMNS).splitlines()[-1], flush=True)
                save_parts(parts, summaries, args.out)
    save_parts(parts, summaries, args.out, final=True)

if __name__ == "__main__":
    main()
