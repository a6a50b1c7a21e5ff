"""The whole model zoo on the torch flow (issue #3): every model at batch 1 and 8 in fp32 (LLMs also fp16;
the 7-8B models and Mixtral at batch 1), printing per row: build time, clean latency, GEMM %, the top
non-GEMM group and its % (wall view, and the device view beside it).

    python benchmarks/zoo.py --out docs/results/zoo-h100.md                       # H100
    python benchmarks/zoo.py --models mixtral --precisions bf16 --out docs/results/zoo-h200.md   # H200
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from common import cell_overrides, cell_parser, markdown, publish, run_cell, top_non_gemm

VISION = ["vit_b16", "vit_l16", "vit_h14", "swin_t", "swin_s", "swin_b", "faster_rcnn", "mask_rcnn", "detr",
          "maskformer", "segformer"]
LANGUAGE = ["gpt2", "gpt2_large", "gpt2_xl", "bert", "llama2", "llama3"]
BATCH_ONE_ONLY = {"llama2", "llama3", "mixtral"}
COLUMNS = ["model", "precision", "batch", "params (M)", "build s", "clean ms", "GEMM % wall", "top non-GEMM (wall)",
           "% wall", "GEMM % device", "top non-GEMM (device)", "% device", "GPU busy %", "status"]


def cells(models: list[str], precisions: list[str], batches: list[str]) -> list[tuple[str, str, str]]:
    out = []
    for model in models:
        for precision in precisions:
            if precision != "fp32" and model not in LANGUAGE + ["mixtral"]:
                continue  # vision models: fp32 only, as in the paper
            for batch in batches:
                if model in BATCH_ONE_ONLY and batch != "1":
                    continue
                out.append((model, precision, batch))
    return out


def row(summary: dict) -> dict:
    base = {"model": summary.get("model"), "precision": summary.get("precision"), "batch": summary.get("batch_size")}
    if summary.get("status") != "ok":
        return {**base, "status": summary.get("error", "failed")[:90]}
    wall_group, wall_pct = top_non_gemm(summary, "wall")
    device_group, device_pct = top_non_gemm(summary, "device")
    return {**base, "params (M)": f"{summary['model_facts']['param_count'] / 1e6:.1f}",
            "build s": f"{summary['steps']['build_s']:.1f}", "clean ms": f"{summary['clean']['median_ms']:.2f}",
            "GEMM % wall": f"{summary['gemm_pct']:.1f}", "top non-GEMM (wall)": wall_group, "% wall": f"{wall_pct:.1f}",
            "GEMM % device": f"{summary['gemm_pct_device']:.1f}", "top non-GEMM (device)": device_group,
            "% device": f"{device_pct:.1f}",
            "GPU busy %": f"{100 * summary['reconciliation']['device_busy_share']:.1f}", "status": "ok"}


def main() -> None:
    parser = cell_parser(__doc__, ",".join(VISION + LANGUAGE), "fp32,fp16", "1,8", iters=20, profile_iters=3)
    parser.add_argument("--extra", default="", help="more Hydra overrides, space separated")
    parser.add_argument("--reuse", type=Path, default=None,
                        help="a benchmark .json (e.g. fidelity's) whose ok cells need not run again")
    args = parser.parse_args()
    done = {}
    if args.reuse and args.reuse.exists():
        done = {(s["model"], s["precision"], str(s["batch_size"])): s
                for s in json.loads(args.reuse.read_text()) if s.get("status") == "ok"}
    summaries = []
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for model, precision, batch in cells(args.models.split(","), args.precisions.split(","),
                                             args.batch_sizes.split(",")):
            if time.perf_counter() - began > args.deadline_s:
                summaries.append({"model": model, "precision": precision, "batch_size": batch,
                                  "status": "failed", "error": "not run: benchmark deadline"})
                continue
            if (model, precision, batch) in done:
                summaries.append(done[(model, precision, batch)])
                continue
            overrides = cell_overrides(args, model, precision, batch, 3, *args.extra.split())
            summary = run_cell(overrides, Path(tmp) / f"{model}_{precision}_{batch}")
            summaries.append(summary)
            print(markdown([row(summary)], COLUMNS).splitlines()[-1], flush=True)
    publish("Model zoo, torch flow (eager)", markdown([row(s) for s in summaries], COLUMNS), summaries, args.out)

if __name__ == "__main__":
    main()
