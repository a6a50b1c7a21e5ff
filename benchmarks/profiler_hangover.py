"""Does a profiler session slow down the clean inferences that come after it? (issue #9 diagnostics)

Clean blocks (CUDA-event timing, as ngbench's clean timing) before any profiler session, then after a
session of each kind (CPU+CUDA activity as ngbench's timed pass, CPU only, CUDA only), for one zoo cell.
  python benchmarks/profiler_hangover.py --model gpt2 --precision fp16
"""

from __future__ import annotations

import argparse
import statistics
import tempfile


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="gpt2")
    parser.add_argument("--precision", default="fp16")
    parser.add_argument("--blocks", type=int, default=4)
    parser.add_argument("--iters", type=int, default=30)
    args = parser.parse_args(argv)

    import profiler_cost_probe
    import torch
    from torch.profiler import ProfilerActivity

    from ngbench.measure.timing import time_block
    from ngbench.models import build_bundle
    from ngbench.trace.torch_profiler import profiled_steps

    cfg = profiler_cost_probe.compose(args.model, args.precision, "cuda", 1, False)
    dtype = {"fp32": torch.float32, "fp16": torch.float16}[args.precision]
    bundle = build_bundle(cfg, "cuda:0", dtype)

    def infer():
        with torch.inference_mode():
            return bundle()

    sync = torch.cuda.synchronize

    def clean(label: str) -> None:
        medians = [statistics.median(time_block(infer, sync, True, args.iters)) / 1000 for _ in range(args.blocks)]
        print(f"{args.model} {args.precision} {label:34s} clean ms per block: " + " ".join(f"{m:.3f}" for m in medians),
              flush=True)

    for _ in range(5):
        infer()
    clean("before any profiler")
    with tempfile.TemporaryDirectory() as work:
        profiled_steps(infer, sync, 3, "cuda:0", f"{work}/t.json", warmup=2)
        clean("after a CPU+CUDA session (ngbench)")
        profiled_steps(infer, sync, 3, "cuda:0", f"{work}/t.json", warmup=2)
        clean("after a second CPU+CUDA session")
        with torch.profiler.profile(activities=[ProfilerActivity.CPU]):
            infer()
        clean("after a CPU-only session")
        with torch.profiler.profile(activities=[ProfilerActivity.CUDA]):
            infer()
        clean("after a CUDA-only session")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
