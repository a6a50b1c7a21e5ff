"""Is Python itself slower while the profiler records? (issue #9 diagnostics)

Times, as ngbench's calibration does (clean blocks paired with profiled blocks), a pure-Python function that
makes no torch call, ngbench's `mixed` calibration workload, and the same workload with pure-Python work
between its ops. Records per iteration come from the profiled trace.
  python benchmarks/python_under_profiler.py --platform cuda
"""

from __future__ import annotations

import argparse
import tempfile


def python_work(n: int = 300) -> int:
    table = {}
    for i in range(n):
        table[i % 17] = table.get(i % 17, 0) + i * 3
    return sum(table.values())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--platform", default="cuda")
    args = parser.parse_args(argv)

    import torch
    import torch.nn.functional as F

    from ngbench.measure.calibration import _synchronizer, measure_loop

    device = "cuda:0" if args.platform == "cuda" else "cpu"
    a, b, weight = (torch.randn(64, 64, device=device) for _ in range(3))
    index = torch.arange(16, device=device)

    def mixed(work: int = 0):
        x = F.gelu(F.layer_norm(F.linear(a, weight), (64,)))
        python_work(work)
        y = torch.softmax(x @ b.t(), -1).view(16, 256).transpose(0, 1).contiguous()
        python_work(work)
        z = torch.cat([y, y], 0)[index] * 0.5 + 1.0
        python_work(work)
        z = torch.where(z > 1.0, z, -z).sum(-1)
        python_work(work)
        return torch.tanh(z).mean() + torch.rsqrt(z.abs() + 1).max()

    workloads = {"pure_python": lambda: [python_work(300) for _ in range(20)],
                 "mixed": lambda: [mixed(0) for _ in range(5)],
                 "mixed+python": lambda: [mixed(300) for _ in range(5)]}
    with tempfile.TemporaryDirectory() as work:
        for name, call in workloads.items():
            loop = measure_loop(name, call, device, _synchronizer(device), work)
            print(f"{name:13s} clean {loop.clean_us:9.1f} us  extra {loop.extra_us:8.1f} us "
                  f"({100 * loop.extra_us / loop.clean_us:5.1f}%)  records {loop.records}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
