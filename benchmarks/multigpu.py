"""One model spread over the GPUs of one host (issue #5): latency, GEMM %, groups and per-GPU busy share.

    python benchmarks/multigpu.py --gpus 4 --out docs/results/mixtral-multigpu.md     # 4-GPU machine
    python benchmarks/multigpu.py --gpus 1 --precision bf16                          # one H200, for comparison
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from common import cell_overrides, markdown, publish, run_cell, top_non_gemm

COLUMNS = ["model", "precision", "batch", "GPUs", "clean ms", "GEMM % wall", "Memory % wall", "top non-GEMM (wall)",
           "%", "busy share per GPU", "status"]


def row(summary: dict, gpus: int) -> dict:
    base = {"model": summary.get("model"), "precision": summary.get("precision"), "batch": summary.get("batch_size"),
            "GPUs": gpus}
    if summary.get("status") != "ok":
        return {**base, "status": summary.get("error", "failed")[:90]}
    group, pct = top_non_gemm(summary)
    per_gpu = summary.get("profile_notes", {}).get("device_busy_share_by_device", {})
    return {**base, "clean ms": f"{summary['clean']['median_ms']:.2f}", "GEMM % wall": f"{summary['gemm_pct']:.1f}",
            "Memory % wall": f"{summary['groups'].get('Memory', {}).get('wall_pct', 0.0):.1f}",
            "top non-GEMM (wall)": group, "%": f"{pct:.1f}",
            "busy share per GPU": " ".join(f"{k}:{100 * v:.0f}%" for k, v in per_gpu.items()), "status": "ok"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mixtral")
    parser.add_argument("--precision", default="fp16")
    parser.add_argument("--batch-sizes", default="1,8")
    parser.add_argument("--gpus", type=int, default=4)
    parser.add_argument("--platform", default="cuda")
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--profile-iters", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    devices = ",".join(f"cuda:{i}" for i in range(args.gpus))
    spread = [f"platform.devices=[{devices}]"] if args.gpus > 1 else []
    summaries, rows = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for batch in args.batch_sizes.split(","):
            overrides = cell_overrides(args, args.model, args.precision, batch, 2, *spread)
            summary = run_cell(overrides, Path(tmp) / f"{args.model}_{batch}")
            summaries.append(summary)
            rows.append(row(summary, args.gpus))
    publish(f"{args.model} over {args.gpus} GPU(s)", markdown(rows, COLUMNS), summaries, args.out)


if __name__ == "__main__":
    main()
