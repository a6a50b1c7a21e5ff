"""Measurement fidelity of the torch flow (issue #2): for the six foundation models at batch 1 and 8,
fp32 and fp16, print per row: clean latency, profiled / clean, Σ wall_us / profiled, GPU busy share,
GEMM % (wall and device views), top non-GEMM group and its %.

    python benchmarks/fidelity.py --out docs/results/fidelity-h100.md          # on the GPU machine
    python benchmarks/fidelity.py --platform cpu --tiny --batch-sizes 1        # a quick CPU check
Targets: Σ wall / profiled in [0.99, 1.01] on every row; profiled / clean <= 1.10.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from common import cell_overrides, cell_parser, markdown, publish, run_cell, top_non_gemm

MODELS = ["gpt2", "vit_b16", "swin_t", "faster_rcnn", "detr", "segformer"]
COLUMNS = ["model", "precision", "batch", "clean ms", "profiled/clean", "Σwall/profiled", "GPU busy %",
           "GEMM % wall", "GEMM % device", "top non-GEMM (wall)", "%", "idle %", "status"]


def row(summary: dict) -> dict:
    if summary.get("status") != "ok":
        return {"model": summary.get("model"), "precision": summary.get("precision"),
                "batch": summary.get("batch_size"), "status": summary.get("error", "failed")[:80]}
    recon = summary["reconciliation"]
    group, pct = top_non_gemm(summary)
    idle = summary["groups"].get("Idle", {}).get("wall_pct", 0.0)
    return {"model": summary["model"], "precision": summary["precision"], "batch": summary["batch_size"],
            "clean ms": f"{summary['clean']['median_ms']:.3f}",
            "profiled/clean": f"{recon['profiled_over_clean']:.3f}",
            "Σwall/profiled": f"{recon['wall_over_profiled']:.4f}",
            "GPU busy %": f"{100 * recon['device_busy_share']:.1f}",
            "GEMM % wall": f"{summary['gemm_pct']:.1f}", "GEMM % device": f"{summary['gemm_pct_device']:.1f}",
            "top non-GEMM (wall)": group, "%": f"{pct:.1f}", "idle %": f"{idle:.1f}", "status": "ok"}


def main() -> None:
    parser = cell_parser(__doc__, ",".join(MODELS), "fp32,fp16", "1,8", iters=30, profile_iters=5)
    parser.add_argument("--tiny", action="store_true", help="shrink the models (CPU checks)")
    args = parser.parse_args()
    summaries = []
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models.split(","):
            for precision in args.precisions.split(","):
                for batch in args.batch_sizes.split(","):
                    if time.perf_counter() - began > args.deadline_s:
                        continue
                    overrides = cell_overrides(args, model, precision, batch, 5)
                    if args.tiny:
                        overrides.append("model.overrides=${model.tiny}")
                    summaries.append(run_cell(overrides, Path(tmp) / f"{model}_{precision}_{batch}"))
    publish("Measurement fidelity, torch flow", markdown([row(s) for s in summaries], COLUMNS), summaries, args.out)

if __name__ == "__main__":
    main()
