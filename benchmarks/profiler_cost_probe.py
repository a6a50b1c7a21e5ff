"""Where does the profiler's extra host time go? A diagnostic for the rebuilt timeline (issue #9).

For one cell (default: gpt2 fp16 batch 1 on cuda) it runs, in alternating blocks, clean inferences and
inferences under the PyTorch profiler in three settings (CPU+CUDA activity, CPU only, CUDA only), with
forward hooks on the model's top-level blocks that read a monotonic clock: the extra time per module under
the profiler is set against the records the trace holds inside that module, priced with the calibrated
cost per record. A module whose extra time exceeds its priced records is where the per-record model fails.
Prints a short table; writes the per-module figures as JSON with --out.

  python benchmarks/profiler_cost_probe.py --model gpt2 --precision fp16 --platform cuda --out probe.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path


def compose(model: str, precision: str, platform: str, batch_size: int, tiny: bool):
    from ngbench.cli import compose_config

    overrides = [f"model={model}", f"precision={precision}", f"platform={platform}", f"batch_size={batch_size}"]
    if tiny:
        overrides.append("model.overrides=${model.tiny}")
    return compose_config(*overrides)


class BlockClock:
    """Forward hooks on the given modules that add up the host time spent inside each."""

    def __init__(self, modules: dict):
        self.spent = defaultdict(float)
        self.handles = []
        self.started: dict[str, int] = {}
        for name, module in modules.items():
            self.handles.append(module.register_forward_pre_hook(lambda _m, _i, n=name: self._enter(n)))
            self.handles.append(module.register_forward_hook(lambda _m, _i, _o, n=name: self._exit(n),
                                                             always_call=True))

    def _enter(self, name):
        self.started[name] = time.perf_counter_ns()

    def _exit(self, name):
        self.spent[name] += (time.perf_counter_ns() - self.started.pop(name, time.perf_counter_ns())) / 1000.0

    def take(self) -> dict:
        spent, self.spent = dict(self.spent), defaultdict(float)
        return spent


def blocks_of(model, depth: int) -> dict:
    """Modules at `depth` dots below the root (e.g. transformer.h.0 for depth 2 on GPT-2)."""
    return {name: module for name, module in model.named_modules() if name and name.count(".") == depth}


def run_block(infer, sync, iters: int, clock: BlockClock, activities=None, trace: str | None = None):
    """`iters` inferences, clean or under the profiler; host ms per inference and per module."""
    import torch

    def loop():
        sync()
        begin = time.perf_counter()
        for _ in range(iters):
            infer()
            sync()
        return (time.perf_counter() - begin) / iters * 1000.0

    clock.take()
    if activities is None:
        ms = loop()
    else:
        with torch.profiler.profile(activities=activities, record_shapes=False) as prof:
            ms = loop()
        if trace:
            prof.export_chrome_trace(trace)
    return ms, {k: v / iters for k, v in clock.take().items()}


class Scopes:
    """A `probe::<module>` profiler range around each given module's forward (for counting records inside)."""

    def __init__(self, modules: dict):
        import torch

        self.open: list = []
        self.handles = []
        for name, module in modules.items():
            def pre(_m, _i, label=f"probe::{name}"):
                scope = torch.profiler.record_function(label)
                scope.__enter__()
                self.open.append(scope)

            def post(_m, _i, _o):
                if self.open:
                    self.open.pop().__exit__(None, None, None)

            self.handles += [module.register_forward_pre_hook(pre), module.register_forward_hook(post, always_call=True)]

    def remove(self):
        for handle in self.handles:
            handle.remove()


def records_inside(trace: str) -> dict:
    """Records per kind in the whole trace and inside each `probe::<module>` range (all inferences)."""
    from ngbench.trace.kineto import RECORD_KINDS, load_trace

    events = load_trace(trace)
    records = events[events["cat"].isin(list(RECORD_KINDS))].assign(kind=lambda e: e["cat"].map(RECORD_KINDS))
    found = {"total": records["kind"].value_counts().to_dict()}
    scopes = records[records["name"].str.startswith("probe::")]
    for name, ranges in scopes.groupby("name"):
        counts: dict = defaultdict(int)
        for row in ranges.itertuples():
            inside = records[(records["tid"] == row.tid) & (records["ts"] > row.ts) & (records["end"] <= row.end)]
            for kind, n in inside["kind"].value_counts().items():
                counts[kind] += int(n)
        found[name[len("probe::"):]] = dict(counts)
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="gpt2")
    parser.add_argument("--precision", default="fp16")
    parser.add_argument("--platform", default="cuda")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--depth", type=int, default=2, help="module depth to time (2: transformer.h.0)")
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)

    import torch
    from torch.profiler import ProfilerActivity

    from ngbench.measure.calibration import costs_for
    from ngbench.models import build_bundle
    from ngbench.platform import resolve_device

    cfg = compose(args.model, args.precision, args.platform, args.batch_size, args.tiny)
    device = resolve_device(cfg.platform)
    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[args.precision]
    bundle = build_bundle(cfg, device, dtype)
    sync = (lambda: torch.cuda.synchronize(device)) if device.startswith("cuda") else (lambda: None)

    def infer():
        with torch.inference_mode():
            return bundle()

    for _ in range(5):
        infer()
    costs, note = costs_for("cached", "outputs/calibration", device, ("op", "runtime", "driver"))
    clock = BlockClock(blocks_of(bundle.model, args.depth))
    settings = {"clean": None, "cpu+cuda": [ProfilerActivity.CPU, ProfilerActivity.CUDA],
                "cpu": [ProfilerActivity.CPU], "cuda": [ProfilerActivity.CUDA]}
    if not device.startswith("cuda"):
        settings = {"clean": None, "cpu": [ProfilerActivity.CPU]}
    results = {name: [] for name in settings}
    profiled = "cpu+cuda" if "cpu+cuda" in settings else "cpu"
    with tempfile.TemporaryDirectory() as work:
        trace = str(Path(work) / "trace.json")
        for _ in range(args.rounds):
            for name, activities in settings.items():
                results[name].append(run_block(infer, sync, args.iters, clock, activities,
                                               trace if name == profiled else None))
        totals = records_inside(trace)["total"]
        scopes = Scopes(blocks_of(bundle.model, args.depth))      # one more traced block, to count per module
        run_block(infer, sync, args.iters, clock, settings[profiled], trace)
        scopes.remove()
        counts = records_inside(trace)
    summary = {"cell": vars(args), "calibration_us": note["costs_us"],
               "per_inference_records": {k: v / args.iters for k, v in totals.items()}}
    for name, blocks in results.items():
        summary[name] = {"ms": [round(b[0], 4) for b in blocks], "median_ms": statistics.median(b[0] for b in blocks)}
    modules = sorted(results["clean"][0][1])
    per_module = {}
    for module in modules:
        clean = statistics.median(b[1].get(module, 0.0) for b in results["clean"])
        prof = statistics.median(b[1].get(module, 0.0) for b in results[profiled])
        records = {k: v / args.iters for k, v in counts.get(module, {}).items()}
        priced_us = sum(costs.of(k) * v for k, v in records.items())
        per_module[module] = {"clean_us": round(clean, 2), "profiled_us": round(prof, 2),
                              "extra_us": round(prof - clean, 2), "records": records,
                              "priced_us": round(priced_us, 2), "unexplained_us": round(prof - clean - priced_us, 2)}
    summary["per_module"] = per_module
    priced = sum(costs.of(k) * v for k, v in summary["per_inference_records"].items())
    summary["priced_record_cost_ms"] = priced / 1000.0
    clean_ms = summary["clean"]["median_ms"]
    print(f"{args.model} {args.precision} b{args.batch_size} on {device}: clean {clean_ms:.3f} ms")
    for name in settings:
        if name != "clean":
            print(f"  {name:9s} {summary[name]['median_ms']:.3f} ms  x{summary[name]['median_ms'] / clean_ms:.3f}")
    print(f"  records per inference {summary['per_inference_records']}; priced at {note['costs_us']}: "
          f"{priced / 1000:.3f} ms; unexplained extra "
          f"{summary[profiled]['median_ms'] - clean_ms - priced / 1000:.3f} ms")
    worst = sorted(per_module.items(), key=lambda kv: -kv[1]["unexplained_us"])[:8]
    for module, row in worst:
        print(f"  {module:28s} clean {row['clean_us']:8.1f} us  extra {row['extra_us']:7.1f} us  "
              f"priced {row['priced_us']:7.1f} us  unexplained {row['unexplained_us']:7.1f} us  {row['records']}")
    if args.out:
        Path(args.out).write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
