"""How `python -m ngbench.report` scales: generate a synthetic sweep of about 10^6 operator rows (330 cells
by default, every ops.parquet column with realistic values and typed lists), then time the report on it
and print: wall time; CPU time of the report and the drawing process it forks; the peak memory of the whole
process tree (Σ RSS, which counts the pages the two processes share once in each, and Σ PSS; sampled every
0.1 s, benchmarks/process_tree.py); what other processes kept busy meanwhile (the machine is shared).

    python benchmarks/report_scale.py --dir /tmp/sweep --keep   # generate the sweep once, time this checkout
    python benchmarks/report_scale.py --dir /tmp/sweep --reuse --repeat 3 --checkout /path/to/other/checkout

Targets (issue 12) on the 2-core machine: <= 5 s and <= 500 MB RSS for all tables and figures. Measured
2026-11-27 on it, eleven runs interleaved with main before the change (deeb366), others keeping 0.1-0.3 CPUs
busy (load average 1.3-2.3 with these runs): 4.01-5.64 s wall (median 5.03), 6.8-8.8 s CPU, 451-468 MB Σ RSS /
393-406 MB Σ PSS (largest process 286 MB); before: 5.09-6.38 s (median 5.56), 8.0-9.4 s CPU, 441-446 MB /
386-391 MB; 0.68 s less in the median pair. Without this script's memory sampler (which shares the two CPUs),
five interleaved runs of the report alone: 4.36-4.99 s (median 4.39) against 4.55-6.16 s (median 5.28). The
same code's times vary by about 20% from one quarter of an hour to the next with no other process busy (a
virtual machine).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

# model: (task, seq_len or None, parameters, ops per iteration at batch 1)
MODELS = {
    "vit_b16": ("image_classification", None, 86_000_000, 500), "vit_l16": ("image_classification", None, 304_000_000, 900),
    "vit_h14": ("image_classification", None, 632_000_000, 1100), "swin_t": ("image_classification", None, 28_000_000, 700),
    "swin_s": ("image_classification", None, 50_000_000, 1200), "swin_b": ("image_classification", None, 88_000_000, 1200),
    "faster_rcnn": ("object_detection", None, 41_000_000, 900), "mask_rcnn": ("object_detection", None, 44_000_000, 1000),
    "detr": ("object_detection", None, 41_000_000, 800), "maskformer": ("image_segmentation", None, 102_000_000, 1300),
    "segformer": ("image_segmentation", None, 3_700_000, 500), "gpt2": ("nlp", 256, 117_000_000, 450),
    "gpt2_large": ("nlp", 256, 762_000_000, 1300), "gpt2_xl": ("nlp", 512, 1_500_000_000, 1600),
    "llama2": ("nlp", 2048, 7_000_000_000, 1000), "bert": ("nlp", 128, 110_000_000, 400),
    "mixtral": ("nlp", 2048, 46_700_000_000, 1500), "llama3": ("nlp", 2048, 8_000_000_000, 1000),
}
ALL = list(MODELS)
ITERATIONS = 5     # profiled iterations per cell
# The paper's suite at four batch sizes (issue 12: "a full paper suite ... is of that size"): 330 cells.
# (flow, platform, device, precision, quant, models, batch sizes, sequence lengths or None)
SUITE = [
    ("torch", "cuda", "cuda:0", "fp32", "", ALL, [1, 2, 4, 8], None),           # Figures 5, 6; Tables I, IV
    ("torch", "cuda", "cuda:0", "fp16", "", ALL, [1, 2, 4, 8], None),
    ("torch", "cpu", "cpu", "fp32", "", ALL, [1, 2, 4, 8], None),               # Figure 6, CPU column
    ("ort", "cuda", "cuda:0", "fp32", "", ["gpt2", "gpt2_xl", "llama2", "bert"], [1, 2, 4, 8], None),  # Figure 7
    ("ort", "cuda", "cuda:0", "fp16", "", ["gpt2", "gpt2_xl", "llama2", "bert"], [1, 2, 4, 8], None),
    ("inductor", "cuda", "cuda:0", "fp16", "", ["swin_t", "swin_b", "detr", "segformer"], [1, 2, 4, 8], None),  # Fig. 8
    ("trt", "cuda", "cuda:0", "fp16", "", ["swin_t", "swin_b", "detr", "segformer"], [1, 2, 4, 8], None),       # Table V
    ("torch", "cuda", "cuda:0", "fp16", "", ["llama3"], [1], [512, 1024, 2048, 4096, 8192]),   # Figure 9, fp16
    ("torch", "cuda", "cuda:0", "fp16", "int8", ["llama3"], [1], [512, 1024, 2048, 4096, 8192]),  # Figure 9, int8
    ("torch", "cuda", "cuda:0", "bf16", "", ["llama2", "llama3", "mixtral", "gpt2_xl", "gpt2_large", "gpt2", "bert",
                                             "vit_h14", "vit_l16", "swin_b"], [1, 2, 4, 8], None),
]
# op, kind, group, is_gemm, module_type, input shapes, weight (how often it occurs), mean µs on the GPU
EAGER_OPS = [
    ("aten::linear", "matmul", "GEMM", True, "Linear", [[1, 128, 768], [768, 768], [768]], 12, 40.0),
    ("aten::conv2d", "conv", "GEMM", True, "Conv2d", [[1, 64, 56, 56], [64, 64, 3, 3], [64]], 3, 60.0),
    ("aten::scaled_dot_product_attention", "attention", "GEMM", True, "Attention", [[1, 12, 128, 64]] * 3, 2, 50.0),
    ("aten::layer_norm", "layer_norm", "Normalization", False, "LayerNorm", [[1, 128, 768], [], [768], [768], []], 5, 12.0),
    ("aten::gelu", "gelu", "Activation", False, "NewGELUActivation", [[1, 128, 3072], []], 3, 10.0),
    ("aten::view", "view", "Memory", False, "GPT2Attention", [[1, 128, 768], []], 12, 2.0),
    ("aten::permute", "permute", "Memory", False, "GPT2Attention", [[1, 128, 12, 64], []], 6, 2.0),
    ("aten::contiguous", "clone", "Memory", False, "SwinLayer", [[1, 56, 56, 96]], 4, 9.0),
    ("aten::add", "add", "Elementwise", False, "GPT2Block", [[1, 128, 768], [1, 128, 768], []], 8, 6.0),
    ("aten::mul", "mul", "Elementwise", False, "GPT2MLP", [[1, 128, 3072], []], 4, 6.0),
    ("aten::softmax", "softmax", "Logit", False, "GPT2Attention", [[1, 12, 128, 128], [], []], 2, 8.0),
    ("aten::embedding", "embedding", "Embedding", False, "Embedding", [[50257, 768], [1, 128]], 1, 5.0),
    ("aten::max_pool2d", "max_pool2d", "Pooling", False, "MaxPool2d", [[1, 64, 112, 112], [], []], 1, 15.0),
    ("aten::upsample_bilinear2d", "upsample", "Interpolation", False, "SegformerDecodeHead", [[1, 256, 32, 32], []], 1, 20.0),
    ("torchvision::nms", "nms", "RoI", False, "RegionProposalNetwork", [[1000, 4], [1000], []], 1, 80.0),
    ("aten::arange", "arange", "Memory", False, "GPT2Model", [[], [], [], [], []], 1, 3.0),
]
ORT_OPS = [("MatMul", "matmul", "GEMM", True, "", [[1, 128, 768], [768, 768]], 12, 30.0),
           ("LayerNormalization", "layer_norm", "Normalization", False, "", [[1, 128, 768], [768], [768]], 5, 9.0),
           ("Gelu", "gelu", "Activation", False, "", [[1, 128, 3072]], 3, 8.0),
           ("Reshape", "view", "Memory", False, "", [[1, 128, 768], [4]], 12, 3.0),
           ("Transpose", "transpose", "Memory", False, "", [[1, 128, 12, 64]], 6, 5.0),
           ("Add", "add", "Elementwise", False, "", [[1, 128, 768], [768]], 8, 4.0),
           ("Softmax", "softmax", "Logit", False, "", [[1, 12, 128, 128]], 2, 6.0)]
FUSED_OPS = [("extern_kernels.mm", "matmul", "GEMM", True, "", [[128, 768], [768, 768]], 12, 38.0, []),
             ("triton_per_fused_add_native_layer_norm_0", "layer_norm", "Normalization", False, "",
              [[1, 128, 768]], 5, 8.0, ["aten::add", "aten::native_layer_norm"]),
             ("triton_poi_fused_gelu_mul_1", "gelu", "Activation", False, "", [[1, 128, 3072]], 3, 7.0,
              ["aten::mul", "aten::gelu"]),
             ("triton_poi_fused_clone_2", "clone", "Memory", False, "", [[1, 128, 768]], 4, 4.0, ["aten::clone"]),
             ("triton_per_fused__softmax_3", "softmax", "Logit", False, "", [[1, 12, 128, 128]], 2, 6.0,
              ["aten::_softmax", "aten::div"])]
KERNELS = {"GEMM": "sm90_xmma_gemm_f32f32_tf32f32_f32_tn_n_tilesize128x128x32", "Normalization": "vectorized_layer_norm_kernel",
           "Activation": "vectorized_elementwise_kernel<4, GeluCUDAKernelImpl>", "Memory": "elementwise_kernel<128, 2, copy>",
           "Elementwise": "vectorized_elementwise_kernel<4, AddFunctor>", "Logit": "cunn_SoftMaxForward<4>",
           "Embedding": "indexSelectLargeIndex", "Pooling": "max_pool_forward_nchw", "Interpolation": "upsample_bilinear2d_out_frame",
           "RoI": "nms_kernel_impl"}
FAILED_CELLS = 4


def cell_list(cells: int) -> list[dict]:
    """The first `cells` cells of SUITE, in a fixed order."""
    out = []
    for flow, platform, device, precision, quant, models, batch_sizes, seq_lens in SUITE:
        for model in models:
            for batch in batch_sizes:
                for seq_len in seq_lens or [MODELS[model][1]]:
                    out.append({"model": model, "flow": flow, "platform": platform, "device": device,
                                "precision": precision, "quant": quant, "batch_size": batch, "seq_len": seq_len})
    return out[:cells]


def _vocabulary(flow: str) -> list[tuple]:
    if flow == "ort":
        return [(*op, []) for op in ORT_OPS]
    if flow in ("inductor", "trt"):
        return FUSED_OPS
    return [(*op, []) for op in EAGER_OPS]


def ops_table(cell: dict, run_id: str, ops_per_iteration: int, rng):
    """One cell's ops rows as an Arrow table with ops.parquet's schema (idle and unattributed rows included)."""
    import pyarrow as pa

    from ngbench.schema import IDLE_OP, UNATTRIBUTED_OP, arrow_schema

    vocab = _vocabulary(cell["flow"]) + [(IDLE_OP, "idle", "Idle", False, "", [], 0, 0.0, []),
                                          (UNATTRIBUTED_OP, "unmapped", "Other", False, "", [], 0, 0.0, [])]
    weights = np.array([v[6] for v in vocab], dtype=float)
    sequence = rng.choice(len(vocab), size=ops_per_iteration - 2, p=weights / weights.sum())
    sequence = np.concatenate([sequence, [len(vocab) - 2, len(vocab) - 1]])  # idle and unattributed last
    index = np.tile(sequence, ITERATIONS)
    rows = len(index)
    on_gpu = cell["platform"] == "cuda"
    scale = cell["batch_size"] ** 0.7 * (1.0 if on_gpu else 8.0)
    mean_us = np.array([v[7] for v in vocab]) * scale
    device_us = rng.exponential(mean_us[index])
    host_us = device_us.copy() if not on_gpu else rng.exponential(6.0, rows)
    wall_us = np.maximum(device_us, host_us) * rng.uniform(0.9, 1.1, rows)
    idle = index == len(vocab) - 2
    wall_us[idle] = rng.uniform(50, 500, idle.sum()) * (1.0 if on_gpu else 0.2)
    device_us[idle] = host_us[idle] = 0.0

    def take(values, arrow_type=None):
        return pa.array(values, type=arrow_type).take(pa.array(index))

    text = pa.string()
    layer = rng.integers(0, 24, rows)
    modules = [f"model.encoder.layer.{k}.{'attention' if k % 2 else 'mlp'}" for k in range(24)]
    kernels = [[KERNELS[v[2]]] if on_gpu and v[2] in KERNELS else [] for v in vocab]
    columns = {
        "run_id": pa.array([run_id] * rows), "model": pa.array([cell["model"]] * rows),
        "variant": pa.array(["full"] * rows), "task": pa.array([cell["task"]] * rows),
        "flow": pa.array([cell["flow"]] * rows), "platform": pa.array([cell["platform"]] * rows),
        "device": pa.array([cell["device"]] * rows), "precision": pa.array([cell["precision"]] * rows),
        "quant": pa.array([cell["quant"]] * rows), "batch_size": pa.array([cell["batch_size"]] * rows, pa.int64()),
        "iteration": pa.array(np.repeat(np.arange(ITERATIONS), len(sequence))),
        "seq": pa.array(np.tile(np.arange(len(sequence)), ITERATIONS)),
        "op": take([v[0] for v in vocab]), "kind": take([v[1] for v in vocab]), "op_group": take([v[2] for v in vocab]),
        "group_source": take(["idle" if v[2] == "Idle" else "fused" if v[8] else "op" for v in vocab]),
        "is_gemm": take([v[3] for v in vocab]), "phase": pa.array(["forward"] * rows),
        "module": pa.array(modules).take(pa.array(layer)), "module_type": take([v[4] for v in vocab]),
        "input_shapes": take([v[5] for v in vocab], pa.list_(pa.list_(pa.int64()))),
        "input_dtypes": take([["float"] * len(v[5]) for v in vocab], pa.list_(text)),
        "host_us": pa.array(host_us), "device_us": pa.array(device_us), "wall_us": pa.array(wall_us),
        "wall_profiled_us": pa.array(wall_us * rng.uniform(1.1, 1.6, rows)),
        "kernels": take(kernels, pa.list_(text)), "fused_ops": take([v[8] for v in vocab], pa.list_(text)),
        "provider": pa.array(["CUDAExecutionProvider" if cell["flow"] == "ort" else ""] * rows),
        "node": take([f"/model/{v[0]}_{k}" if cell["flow"] == "ort" else "" for k, v in enumerate(vocab)]),
        "input_values": take([["", "-1"] if v[2] == "Memory" else [] for v in vocab], pa.list_(text)),
        "flops": pa.array(np.where(np.isin(index, [len(vocab) - 2, len(vocab) - 1]), np.nan, device_us * 2e5),
                          from_pandas=True),
        "bytes": pa.array(np.where(index == len(vocab) - 1, np.nan, device_us * 1e4), from_pandas=True),
    }
    return pa.table(columns, schema=arrow_schema("ops"))


def summary_for(cell: dict, run_id: str, table, rng) -> dict:
    """A summary.json like a real run's: the cell key, clean stats, per-group totals, reconciliation."""
    from ngbench.schema import SCHEMA_VERSION
    from ngbench.summary import group_totals

    ops = table.select(["iteration", "op", "op_group", "kind", "host_us", "device_us", "wall_us",
                        "wall_profiled_us"]).to_pandas()
    groups = group_totals(ops, device_is_host=cell["platform"] == "cpu")
    per_iteration = ops.groupby("iteration")[["wall_us", "wall_profiled_us"]].sum()
    rebuilt_ms = float(per_iteration["wall_us"].median()) / 1000.0
    profiled_ms = float(per_iteration["wall_profiled_us"].median()) / 1000.0
    clean_ms = rebuilt_ms * rng.uniform(0.9, 1.1)
    iterations = [{"iteration": int(k), "block": int(k) % 2, "profiled_us": float(row["wall_profiled_us"]),
                   "rebuilt_us": float(row["wall_us"]), "busy_us": float(row["wall_us"]) * 0.8,
                   "busy_profiled_us": float(row["wall_profiled_us"]) * 0.6, "record_cost_us": 100.0,
                   "waits": 0, "stalled": False} for k, row in per_iteration.iterrows()]
    warnings = []
    if abs(rebuilt_ms / clean_ms - 1.0) > 0.05:
        warnings.append(f"the rebuilt timeline is {100 * (rebuilt_ms / clean_ms - 1):+.1f}% off the clean latency "
                        "(reconstructed/clean): wall shares carry that much unexplained time")
    return {
        "status": "ok", "run_id": run_id, **_key(cell),
        "config": {"batch_size": cell["batch_size"], "precision": cell["precision"], "iters": 20},
        "environment": {"cpu": "AMD EPYC 7763", "gpu": "NVIDIA H100 80GB HBM3" if cell["platform"] == "cuda" else ""},
        "model_facts": {"param_count": MODELS[cell["model"]][2], "seq_len": cell["seq_len"]},
        "clean": {"median_ms": clean_ms, "p10_ms": clean_ms * 0.95, "p90_ms": clean_ms * 1.08, "mean_ms": clean_ms,
                  "cv": 0.04, "ci95_ms": [clean_ms * 0.97, clean_ms * 1.03], "iters": 20},
        "profiled_ms": profiled_ms, "reconstructed_ms": rebuilt_ms, "iterations": iterations, "groups": groups,
        "gemm_pct": groups.get("GEMM", {}).get("wall_pct", 0.0), "idle_ms": groups.get("Idle", {}).get("wall_ms", 0.0),
        "reconciliation": {"reconstructed_over_clean": rebuilt_ms / clean_ms, "profiled_over_clean": profiled_ms / clean_ms,
                           "device_busy_share": 0.8, "stalled_iterations": 0, "profiled_iterations": ITERATIONS},
        "energy": {"joules_per_inference": clean_ms * 0.3 if cell["platform"] == "cuda" else None},
        "memory": {"peak_bytes": int(MODELS[cell["model"]][2] * 4.4)},
        "unmapped_ops": {}, "warnings": warnings, "error": "", "schema_version": SCHEMA_VERSION,
    }


def _key(cell: dict) -> dict:
    return {"model": cell["model"], "variant": "full", "task": cell["task"], "flow": cell["flow"],
            "platform": cell["platform"], "device": cell["device"], "precision": cell["precision"], "quant": cell["quant"],
            "batch_size": cell["batch_size"]}


def generate(root: Path, cells: int = 330, rows: int = 1_000_000, seed: int = 0, keep: set[int] | None = None) -> int:
    """Write the synthetic sweep under `root` (FAILED_CELLS of its cells failed, without ops.parquet); with
    `keep`, only the cells of those indices (a small sweep of the same shape, for the tests). Returns the op
    rows written."""
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    chosen = cell_list(cells)
    weights = np.array([MODELS[c["model"]][3] for c in chosen], dtype=float)
    per_cell = np.maximum(4, np.round(weights / weights.sum() * rows / ITERATIONS)).astype(int)
    kept = sorted(keep) if keep is not None else list(range(len(chosen)))
    failed_cells = {kept[int(k)] for k in np.linspace(1, len(kept) - 1, FAILED_CELLS)}
    written = 0
    for k in kept:
        cell = {**chosen[k], "task": MODELS[chosen[k]["model"]][0]}
        quant = f",+quant={cell['quant']}" if cell["quant"] else ""
        run_dir = root / (f"{k:03d}_model={cell['model']},flow={cell['flow']},platform={cell['platform']},precision="
                          f"{cell['precision']}{quant},batch_size={cell['batch_size']},model.seq_len={cell['seq_len']}")
        run_dir.mkdir(parents=True, exist_ok=True)
        run_id = f"{k:06d}{seed:06d}"
        if k in failed_cells:
            failed = {"status": "failed", "run_id": run_id, **_key(cell), "error": "UserError: CUDA out of memory "
                      "while building the model", "user_error": True, "schema_version": 2}
            (run_dir / "summary.json").write_text(json.dumps(failed, indent=2))
            continue
        table = ops_table(cell, run_id, int(per_cell[k]), rng)
        pq.write_table(table, run_dir / "ops.parquet")
        (run_dir / "summary.json").write_text(json.dumps(summary_for(cell, run_id, table, rng), indent=2))
        written += table.num_rows
    return written


def time_report(sweep: Path, out: Path, checkout: Path, extra: list[str]) -> dict:
    """Run `python -m ngbench.report` from `checkout`: wall seconds; CPU seconds (user + system) of the report
    and the processes it forked and reaped (os.wait4's resource usage: the figures' drawing processes
    included); the peak memory of its process tree (Σ RSS and Σ PSS of all its processes at once, sampled,
    process_tree.PeakSampler) and of its largest process (ru_maxrss); exit status; files written."""
    from process_tree import PeakSampler

    command = [sys.executable, "-m", "ngbench.report", str(sweep), "--out", str(out), *extra]
    machine = _machine_cpu_s()
    began = time.perf_counter()
    process = subprocess.Popen(command, cwd=checkout, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    sampler = PeakSampler(process.pid)
    stderr = process.stderr.read()
    sampler.stop()
    _, status, usage = os.wait4(process.pid, 0)
    wall_s = time.perf_counter() - began
    busy_s, niced_s = (after - before for after, before in zip(_machine_cpu_s(), machine))
    cpu_s = usage.ru_utime + usage.ru_stime
    return {"exit": os.waitstatus_to_exitcode(status), "wall_s": wall_s, "cpu_s": cpu_s,
            "others_cpus": max(busy_s - cpu_s, 0.0) / wall_s, "niced_cpus": niced_s / wall_s,
            "tree_rss_mb": sampler.peak_rss_mb, "tree_pss_mb": sampler.peak_pss_mb,
            "largest_rss_mb": usage.ru_maxrss / 1024,   # KiB on Linux: the largest of the process and its children
            "files": len([p for p in out.rglob("*") if p.is_file()]) if out.exists() else 0,
            "stderr_tail": stderr[-600:]}


def _machine_cpu_s() -> tuple[float, float]:
    """CPU seconds the whole machine has spent busy since boot at normal priority, and at a lowered one (nice),
    from /proc/stat: what other processes took while the report ran (the machine is shared)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:8]]
    user, nice, system, _, _, irq, softirq = fields
    hz = os.sysconf("SC_CLK_TCK")
    return (user + system + irq + softirq) / hz, nice / hz


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=330)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=None, help="where to write the sweep (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the generated sweep")
    parser.add_argument("--reuse", action="store_true", help="time the sweep already in --dir (no generation)")
    parser.add_argument("--checkout", type=Path, default=ROOT, help="the ngbench checkout whose report is timed")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("report_args", nargs="*", help="extra arguments for ngbench.report (after --)")
    args = parser.parse_args()
    sweep = args.dir or Path(tempfile.mkdtemp(prefix="ngbench-report-scale-"))
    try:
        if not args.reuse:
            began = time.perf_counter()
            rows = generate(sweep, args.cells, args.rows)
            print(f"generated {args.cells} cells, {rows} op rows in {time.perf_counter() - began:.1f} s: {sweep}")
        for _ in range(args.repeat):
            out = Path(tempfile.mkdtemp(prefix="ngbench-report-out-"))
            figures = time_report(sweep, out, args.checkout.resolve(), args.report_args)
            load = os.getloadavg()[0]
            print(f"report ({args.checkout}): exit {figures['exit']}, {figures['wall_s']:.2f} s wall, "
                  f"{figures['cpu_s']:.2f} s CPU (user+sys, all processes), peak memory of the process tree "
                  f"{figures['tree_rss_mb']:.0f} MB RSS / {figures['tree_pss_mb']:.0f} MB PSS (largest process "
                  f"{figures['largest_rss_mb']:.0f} MB), {figures['files']} files written; meanwhile other processes "
                  f"kept {figures['others_cpus']:.1f} CPUs busy (+{figures['niced_cpus']:.1f} at low priority), load "
                  f"average {load:.1f} on {os.cpu_count()} CPUs")
            if figures["exit"] not in (0, 3):
                print(figures["stderr_tail"])
            shutil.rmtree(out, ignore_errors=True)
    finally:
        if not args.keep and args.dir is None:
            shutil.rmtree(sweep, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
