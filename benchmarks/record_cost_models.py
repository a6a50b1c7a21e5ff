"""Which model of the profiler's host cost explains real workloads? (issue #9 diagnostics)

For several workloads (micro-loops of one op, a mixed sequence of many distinct ops, tiny and full zoo
models) it measures, in alternating blocks, the host time per iteration clean and under torch.profiler
(CPU + CUDA activity, as ngbench's timed pass), and counts the trace's records per iteration: cpu_op records
at the top level (called from Python) and nested (called from C++), runtime and driver calls. It then fits
several cost models by non-negative least squares over the workloads and prints each workload's residual,
so the model that explains them all can be chosen.

  python benchmarks/record_cost_models.py --platform cuda --out costs.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path


def workloads(device: str, full: bool) -> dict:
    import torch
    import torch.nn.functional as F

    a = torch.randn(64, 64, device=device)
    b = torch.randn(64, 64, device=device)
    w = torch.randn(64, 64, device=device)
    idx = torch.arange(16, device=device)

    def mixed():
        x = F.linear(a, w)
        x = F.layer_norm(x, (64,))
        x = F.gelu(x)
        y = torch.softmax(x @ b.t(), -1)
        y = y.view(16, 256).transpose(0, 1).contiguous()
        z = torch.cat([y, y], 0)[idx]
        z = z * 0.5 + 1.0
        z = torch.where(z > 1.0, z, -z).sum(-1)
        return torch.tanh(z).mean() + torch.rsqrt(z.abs() + 1).max()

    loops = {
        "view": lambda: [a.view(4096) for _ in range(50)],
        "add": lambda: [torch.add(a, b) for _ in range(50)],
        "linear": lambda: [F.linear(a, w) for _ in range(50)],
        "mixed": lambda: [mixed() for _ in range(5)],
    }
    for name in ("gpt2", "swin_t", "vit_b16") + (("gpt2:full", "swin_t:full") if full else ()):
        loops[name] = model_infer(name, device)
    return loops


def model_infer(spec: str, device: str):
    import torch

    from ngbench.cli import compose_config
    from ngbench.models import build_bundle

    name, _, size = spec.partition(":")
    overrides = [f"model={name}", "platform=cpu" if device == "cpu" else "platform=cuda"]
    if size != "full":
        overrides.append("model.overrides=${model.tiny}")
    cfg = compose_config(*overrides)
    dtype = torch.float16 if spec.startswith("gpt2") and device != "cpu" else torch.float32
    bundle = build_bundle(cfg, device, dtype)

    def infer():
        with torch.inference_mode():
            return bundle()

    return infer


def measure(infer, sync, iters: int, rounds: int, trace: str, device: str, warmup: int = 2):
    """Median host ms per iteration clean and profiled in alternating blocks; profiled blocks run as ngbench's
    timed pass does (a profiler session with `warmup` unrecorded steps, then `iters` active steps)."""
    from ngbench.trace.torch_profiler import profiled_steps

    times: list[float] = []

    def timed():
        begin = time.perf_counter()
        infer()
        sync()
        times.append((time.perf_counter() - begin) * 1e3)

    for _ in range(3):
        timed()
    clean, profiled = [], []
    for _ in range(rounds):
        times.clear()
        for _ in range(iters):
            timed()
        clean.append(statistics.median(times))
        times.clear()
        profiled_steps(timed, lambda: None, iters, device, trace, warmup=warmup)
        profiled.append(statistics.median(times[warmup:]))
    return statistics.median(clean), statistics.median(profiled)


def count_records(trace: str, iters: int) -> dict:
    import numpy as np

    from ngbench.trace.attribution import outermost
    from ngbench.trace.kineto import load_trace

    events = load_trace(trace)
    events = events[~events["name"].str.startswith("ProfilerStep#")]
    ops = events[events["cat"] == "cpu_op"]
    main_tid = ops["tid"].value_counts().index[0]
    mine = ops[ops["tid"] == main_tid].sort_values(["ts", "end"], ascending=[True, False])
    top = len(outermost(mine))
    runtime = events[(events["cat"] == "cuda_runtime") & (events["tid"] == main_tid)]
    driver = events[(events["cat"] == "cuda_driver") & (events["tid"] == main_tid)]
    launches = runtime["name"].str.contains("Launch|Memcpy|Memset").sum() + driver["name"].str.contains("Launch").sum()
    return {"top": top / iters, "nested": (len(mine) - top) / iters, "runtime": len(runtime) / iters,
            "driver": len(driver) / iters, "launch": float(launches) / iters,
            "distinct_ops": int(mine["name"].nunique()), "mean_gap_us": float(np.diff(mine["ts"]).mean())}


MODELS = {"M1 op+runtime+driver": ("op", "runtime", "driver"), "M2 top+nested+runtime+driver": ("top", "nested", "runtime", "driver"),
          "M3 top+nested+launch": ("top", "nested", "launch")}


def fit(rows: list[dict], columns: tuple[str, ...]) -> tuple[dict, list[float]]:
    import numpy as np
    from scipy.optimize import nnls

    matrix = np.array([[_feature(r, c) for c in columns] for r in rows])
    target = np.array([r["extra_us"] for r in rows])
    solution, _ = nnls(matrix, target)
    predicted = matrix @ solution
    return dict(zip(columns, map(float, solution))), [float(p / t) if t else 0.0 for p, t in zip(predicted, target)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--platform", default="cuda")
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--full", action="store_true", help="also full-size gpt2 and swin_t")
    parser.add_argument("--out", default=None)
    parser.add_argument("--from-json", default=None, help="refit the rows of an earlier --out file (no device)")
    args = parser.parse_args(argv)
    if args.from_json:
        report_fits(json.loads(Path(args.from_json).read_text())["rows"])
        return 0

    import torch

    device = "cuda:0" if args.platform == "cuda" else "cpu"
    sync = (lambda: torch.cuda.synchronize()) if device != "cpu" else (lambda: None)
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for name, infer in workloads(device, args.full).items():
            trace = str(Path(work) / f"{name}.json")
            clean, profiled = measure(infer, sync, args.iters, args.rounds, trace, device)
            records = count_records(trace, args.iters)
            rows.append({"workload": name, "clean_ms": clean, "profiled_ms": profiled,
                         "extra_us": (profiled - clean) * 1e3, "records": records})
            print(f"{name:12s} clean {clean:8.3f} ms  profiled {profiled:8.3f} ms  extra {(profiled - clean) * 1e3:8.1f} us"
                  f"  records {json.dumps({k: round(v, 1) for k, v in records.items()})}", flush=True)
    fits = report_fits(rows)
    if args.out:
        Path(args.out).write_text(json.dumps({"rows": rows, "fits": fits}, indent=1))
    return 0


def report_fits(rows: list[dict]) -> dict:
    """Each model fitted on every workload, then on the synthetic ones only (no zoo model) and checked on
    the zoo models it did not see."""
    fits = {}
    synthetic = [r for r in rows if r["workload"] in ("view", "add", "linear", "mixed")]
    for label, columns in MODELS.items():
        costs, ratios = fit(rows, columns)
        fits[label] = {"costs_us": costs, "predicted_over_measured": dict(zip([r["workload"] for r in rows], ratios))}
        print(f"{label}: {json.dumps({k: round(v, 3) for k, v in costs.items()})}")
        print("   predicted/measured " + " ".join(f"{r['workload']}:{x:.2f}" for r, x in zip(rows, ratios)))
        costs, _ = fit(synthetic, columns)
        held_out = [r for r in rows if r not in synthetic]
        _, ratios = fit_check(held_out, columns, costs)
        print(f"   fitted on synthetic workloads {json.dumps({k: round(v, 3) for k, v in costs.items()})}, "
              "predicted/measured on zoo models " + " ".join(f"{r['workload']}:{x:.2f}" for r, x in zip(held_out, ratios)))
    return fits


def fit_check(rows: list[dict], columns: tuple[str, ...], costs: dict) -> tuple[dict, list[float]]:
    predicted = [sum(costs[c] * _feature(r, c) for c in columns) for r in rows]
    return costs, [p / r["extra_us"] if r["extra_us"] else 0.0 for p, r in zip(predicted, rows)]


def _feature(row: dict, column: str) -> float:
    records = row["records"]
    return records["top"] + records["nested"] if column == "op" else records.get(column, 0.0)


if __name__ == "__main__":
    raise SystemExit(main())
