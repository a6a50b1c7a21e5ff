"""How long the run path's post-processing of a profiled run takes (`attribution_s` of summary.json's steps):
`KinetoProfiler.result(costs)` on mask_rcnn-scale blocks (benchmarks/inference_trace.py: 6 blocks x 2
iterations of ~6,260 operators, the H100's calibrated costs), in a fresh process per repeat.

Prints wall and CPU seconds and peak RSS of each repeat, and with `--profile` the functions that took the time
(cProfile, cumulative). `--checkout DIR` times another checkout's ngbench on the same traces (before/after).

    python benchmarks/attribution_speed.py [--ops 6264] [--streams 1] [--repeats 2] [--profile]
    python benchmarks/attribution_speed.py --trace RUN/trace.json --device cpu    # a recorded block
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHILD = """
import cProfile, io, json, pstats, resource, sys, time
sys.path[:0] = [{checkout!r}, {benchmarks!r}]
import torch  # a run has imported it long before (the annotation pass's module hooks import it)
from inference_trace import profile_result
from pathlib import Path
paths = [Path(p) for p in {paths!r}]
profiler = cProfile.Profile() if {profile!r} else None
wall, cpu = time.perf_counter(), time.process_time()
if profiler:
    profiler.enable()
result = profile_result(paths, Path({annotation!r}), device={device!r})
if profiler:
    profiler.disable()
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats("ngbench", 25)
    print(text.getvalue(), file=sys.stderr)
print(json.dumps({{"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "ops": len(result.ops),
                  "kernels": len(result.kernels), "ngbench": __import__("ngbench").__file__}}))
"""


def time_once(checkout: Path, paths: list[Path], annotation: Path, device: str, profile: bool) -> dict:
    code = CHILD.format(checkout=str(checkout), benchmarks=str(ROOT / "benchmarks"), paths=[str(p) for p in paths],
                        annotation=str(annotation), device=device, profile=profile)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=checkout)
    if profile:
        print(done.stderr[-6000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from inference_trace import write_blocks

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=6264, help="top-level operators per iteration (mask_rcnn b1: 6264)")
    parser.add_argument("--blocks", type=int, default=6)
    parser.add_argument("--streams", type=int, default=1, help="device streams (0: a CPU run)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--profile", action="store_true", help="print cProfile's cumulative times (one more repeat)")
    parser.add_argument("--checkout", type=Path, default=ROOT, help="the ngbench checkout to time")
    parser.add_argument("--dir", type=Path, default=None, help="keep the generated traces here (default: temp)")
    parser.add_argument("--trace", type=Path, action="append", default=[],
                        help="a recorded block trace to use instead (repeat for several blocks; the first is also "
                             "the annotation pass), e.g. a run's trace.json (save_trace=true)")
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda unless --streams 0)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ngbench-attribution-") as tmp:
        folder = args.dir or Path(tmp)
        if args.trace:
            paths, annotation = args.trace, args.trace[0]
            what = f"{len(paths)} recorded trace(s)"
        else:
            paths, annotation = write_blocks(folder, args.ops, args.blocks, streams=args.streams)
            what = f"{args.blocks} blocks x 2 iterations x {args.ops} ops"
        megabytes = sum(p.stat().st_size for p in paths) / 1e6
        device = args.device or ("cuda" if args.streams else "cpu")
        print(f"{args.checkout}: {what}, {megabytes:.0f} MB of trace, on {device}, "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        print("| repeat | wall s | CPU s | peak RSS MB | op rows | kernel rows |\n|---|---|---|---|---|---|")
        for repeat in range(args.repeats):
            found = time_once(args.checkout, paths, annotation, device, profile=False)
            print(f"| {repeat + 1} | {found['wall_s']:.2f} | {found['cpu_s']:.2f} | {found['rss_mb']:.0f} | "
                  f"{found['ops']} | {found['kernels']} |", flush=True)
        if args.profile:
            time_once(args.checkout, paths, annotation, device, profile=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
