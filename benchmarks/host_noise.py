"""How noisy is the host for clean timing, and does pinning the process to one CPU help? (issue #9)

Prints the cgroup CPU quota and throttling counters, then clean blocks of one cell unpinned and pinned to a
few CPUs in turn (throttled time read around each block).
  python benchmarks/host_noise.py --model gpt2 --precision fp16 --cpus 2 9
"""

from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path


def cgroup(name: str) -> str:
    for base in ("/sys/fs/cgroup", "/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/cpu"):
        path = Path(base) / name
        if path.exists():
            return path.read_text().strip().replace("\n", "; ")
    return "n/a"


def throttled_us() -> float:
    for line in cgroup("cpu.stat").split("; "):
        if line.startswith("throttled_usec"):
            return float(line.split()[1])
    return float("nan")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="gpt2")
    parser.add_argument("--precision", default="fp16")
    parser.add_argument("--blocks", type=int, default=6)
    parser.add_argument("--iters", type=int, default=30)
    parser.add_argument("--cpus", type=int, nargs="*", default=[2])
    args = parser.parse_args(argv)

    import profiler_cost_probe
    import torch

    from ngbench.measure.timing import time_block
    from ngbench.models import build_bundle

    print("cpu.max", cgroup("cpu.max"), "| nproc", os.cpu_count(), "| affinity", len(os.sched_getaffinity(0)),
          "| torch threads", torch.get_num_threads(), "| loadavg", os.getloadavg())
    cfg = profiler_cost_probe.compose(args.model, args.precision, "cuda", 1, False)
    bundle = build_bundle(cfg, "cuda:0", {"fp32": torch.float32, "fp16": torch.float16}[args.precision])

    def infer():
        with torch.inference_mode():
            return bundle()

    for _ in range(5):
        infer()
    everything = sorted(os.sched_getaffinity(0))
    for label, cpus in [("unpinned", everything)] + [(f"cpu {c}", [c]) for c in args.cpus] + [("unpinned", everything)]:
        os.sched_setaffinity(0, set(cpus))
        medians, throttles = [], []
        for _ in range(args.blocks):
            before = throttled_us()
            medians.append(statistics.median(time_block(infer, torch.cuda.synchronize, True, args.iters)) / 1000)
            throttles.append(throttled_us() - before)
        print(f"{label:9s} block medians ms: " + " ".join(f"{m:.2f}" for m in medians)
              + f" | spread {max(medians) / min(medians):.2f} | throttled ms: " + " ".join(f"{t / 1000:.0f}" for t in throttles),
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
