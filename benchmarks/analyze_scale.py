"""How `python -m ngbench.analyze` scales with the size of a trace (issue #14: <= 60 s and <= 2 GB RSS for 1 GB).

Generates Kineto-layout traces of a GPU training step (forward ops on the main thread, backward on the
autograd thread, optimizer, record_shapes args, with_stack module events and Python frames, launches,
kernels, flow arrows), one per size, in a temporary folder; runs the real command on each in a subprocess;
prints wall time, peak RSS and throughput; deletes the traces.

    python benchmarks/analyze_scale.py --sizes-gb 0.25,1.0
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOST_PID, MAIN_TID, BACKWARD_TID, GPU = 4242, 4242, 4250, 0
HIDDEN, TOKENS = 1024, 512


class Writer:
    """Writes events in the exporter's layout (one key per line-ish, as torch.profiler does)."""

    def __init__(self, handle):
        self.handle, self.first, self.correlation, self.external = handle, True, 0, 0

    def event(self, text: str) -> None:
        self.handle.write(("  " if self.first else ",\n  ") + text)
        self.first = False

    def op(self, name, ts, dur, tid=MAIN_TID, cat="cpu_op", dims="[[512, 1024], [1024, 1024], [1024]]", seq=-1):
        self.external += 1
        self.event(f'{{\n    "ph": "X", "cat": "{cat}", "name": "{name}", "pid": {HOST_PID}, "tid": {tid},\n'
                   f'    "ts": {ts:.3f}, "dur": {dur:.3f},\n    "args": {{\n      "External id": {self.external},'
                   f'"Record function id": 0, "Sequence number": {seq}, "Fwd thread id": 0, '
                   f'"Concrete Inputs": ["", "", ""], "Input type": ["c10::BFloat16", "c10::BFloat16", '
                   f'"c10::BFloat16"], "Input Strides": [[1024, 1], [1024, 1], [1]], "Input Dims": {dims}, '
                   f'"Ev Idx": {self.external}\n    }}\n  }}')

    def python(self, name, ts, dur, tid=MAIN_TID):
        self.event(f'{{\n    "ph": "X", "cat": "python_function", "name": "{name}", "pid": {HOST_PID}, '
                   f'"tid": {tid},\n    "ts": {ts:.3f}, "dur": {dur:.3f},\n    "args": {{\n      "Python parent id": 1, '
                   f'"Python id": {self.external}, "Ev Idx": {self.external}\n    }}\n  }}')

    def launch(self, kernel, ts, start, dur, tid=MAIN_TID):
        """cudaLaunchKernel at ts, its kernel at start, and the ac2g flow arrows between them."""
        self.correlation += 1
        c = self.correlation
        self.event(f'{{\n    "ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": {HOST_PID}, '
                   f'"tid": {tid},\n    "ts": {ts:.3f}, "dur": 3.100,\n    "args": {{\n      "External id": '
                   f'{self.external}, "cbid": 211, "correlation": {c}\n    }}\n  }}')
        self.event(f'{{\n    "ph": "X", "cat": "kernel", "name": "{kernel}", "pid": {GPU}, "tid": 7,\n'
                   f'    "ts": {start:.3f}, "dur": {dur:.3f},\n    "args": {{\n      "External id": {self.external}, '
                   f'"queued": 0, "device": 0, "context": 1, "stream": 7, "correlation": {c}, "registers per thread": '
                   f'168, "shared memory": 0, "blocks per SM": 3.9, "warps per SM": 31.0, "grid": [132, 1, 1], '
                   f'"block": [256, 1, 1], "est. achieved occupancy %": 0\n    }}\n  }}')
        self.event(f'{{\n    "ph": "s", "id": {c}, "pid": {HOST_PID}, "tid": {tid}, "ts": {ts:.3f}, '
                   f'"cat": "ac2g", "name": "ac2g"\n  }}')
        self.event(f'{{\n    "ph": "f", "id": {c}, "pid": {GPU}, "tid": 7, "ts": {start:.3f}, '
                   f'"cat": "ac2g", "name": "ac2g", "bp": "e"\n  }}')


LAYER_FORWARD = [  # (op, [inner ops], kernel, kernel µs, module)
    ("aten::linear", ["aten::t", "aten::transpose", "aten::as_strided", "aten::addmm"], "sm90_xmma_gemm_bf16", 40, "Linear"),
    ("aten::layer_norm", ["aten::native_layer_norm", "aten::empty", "aten::empty"], "vectorized_layer_norm_kernel",
     8, "LayerNorm"),
    ("aten::gelu", [], "GeluCUDAKernelImpl", 6, "GELU"),
    ("aten::add", [], "elementwise_kernel", 5, ""),
]
LAYER_BACKWARD = [("AddmmBackward0", ["aten::mm", "aten::mm", "aten::sum"], "sm90_xmma_gemm_bf16", 80),
                  ("NativeLayerNormBackward0", ["aten::native_layer_norm_backward"], "layer_norm_grad_kernel", 12),
                  ("GeluBackward0", ["aten::gelu_backward"], "GeluBackwardKernel", 8),
                  ("torch::autograd::AccumulateGrad", ["aten::add_"], "elementwise_kernel", 4)]


def write_step(w: Writer, step: int, t: float, layers: int) -> float:
    """One training step starting at host time t; returns its end."""
    start = t
    gpu = t + 50.0
    t += 5.0
    for layer in range(layers):
        w.python(f"nn.Module: Block_{layer}", t, 400.0)
        for j, (name, inner, kernel, kernel_us, module) in enumerate(LAYER_FORWARD):
            if module:
                w.python(f"nn.Module: {module}_{layer}", t, 60.0)
            w.python("torch/nn/modules/module.py(1750): _call_impl", t + 0.5, 55.0)
            w.op(name, t + 1, 50.0, seq=step * 10000 + layer * 10 + j)
            for k, child in enumerate(inner):
                w.op(child, t + 2 + 8 * k, 6.0)
            gpu = max(gpu, t + 40) + kernel_us
            w.launch(kernel, t + 35, gpu - kernel_us, kernel_us)
            t += 60.0
    for layer in reversed(range(layers)):
        for j, (name, inner, kernel, kernel_us) in enumerate(LAYER_BACKWARD):
            w.op(f"autograd::engine::evaluate_function: {name}", t, 50.0, tid=BACKWARD_TID,
                 seq=step * 10000 + layer * 10 + j if j < 3 else -1)
            for k, child in enumerate(inner):
                w.op(child, t + 2 + 10 * k, 8.0, tid=BACKWARD_TID)
            gpu = max(gpu, t + 40) + kernel_us
            w.launch(kernel, t + 40, gpu - kernel_us, kernel_us, tid=BACKWARD_TID)
            t += 55.0
    w.op("Optimizer.step#AdamW.step", t, 100.0, cat="user_annotation")
    w.op("aten::_foreach_add_", t + 5, 80.0, dims="[[], []]")
    gpu = max(gpu, t + 60) + 30
    w.launch("multi_tensor_apply_kernel", t + 60, gpu - 30, 30)
    end = max(t + 110.0, gpu + 5.0)
    # the step range itself, now that its length is known (events need not be in time order)
    w.op(f"ProfilerStep#{step}", start, end - start, cat="user_annotation")
    return end


def generate(path: Path, target_bytes: int, steps: int = 8) -> int:
    """A trace of `steps` training steps of about `target_bytes` in all (the layers per step are chosen so);
    returns the number of layers per step."""
    layers = max(1, round(target_bytes / steps / 18_700))  # about 18.7 kB of trace per layer and step
    with open(path, "w") as handle:
        handle.write('{\n  "schemaVersion": 1,\n  "deviceProperties": [\n    {"id": 0, "name": "NVIDIA H100 80GB HBM3", '
                     '"totalGlobalMem": 85029158912, "computeMajor": 9, "computeMinor": 0}\n  ],\n'
                     '  "record_shapes": 1,\n  "with_stack": 1,\n  "baseTimeNanoseconds": 1700000000000000000,\n'
                     '  "traceEvents": [\n')
        w = Writer(handle)
        t = 1_000_000.0
        for step in range(3, 3 + steps):  # ProfilerStep#0-2: the schedule's wait and warm-up, not written
            t = write_step(w, step, t, layers) + 20.0
        handle.write('\n  ],\n  "traceName": "synthetic"\n}\n')
    return layers


def tree_rss_mb(root: int) -> float:
    """Resident memory of a process and all its descendants (the parsing workers), from /proc."""
    parents, rss = {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        parents[int(entry.name)] = int(fields.get("PPid", "0").strip() or 0)
        rss[int(entry.name)] = int(fields.get("VmRSS", "0 kB").split()[0]) / 1024.0
    def descends(pid: int) -> bool:
        while pid > 1:
            if pid == root:
                return True
            pid = parents.get(pid, 0)
        return False
    return sum(value for pid, value in rss.items() if descends(pid))


def measure(path: Path, out: Path) -> tuple[float, float, float, int]:
    """Wall seconds, CPU seconds (user + system, workers included), peak RSS of the whole process tree (MB,
    sampled every 0.2 s) and exit code of `python -m ngbench.analyze path --out out`."""
    cpu_before = _children_cpu_s()
    began = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "ngbench.analyze", str(path), "--out", str(out)], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak_mb = 0.0
    while process.poll() is None:
        peak_mb = max(peak_mb, tree_rss_mb(process.pid))
        time.sleep(0.2)
    elapsed = time.perf_counter() - began
    if process.returncode:
        print(process.stderr.read().decode()[-2000:], file=sys.stderr)
    return elapsed, _children_cpu_s() - cpu_before, peak_mb, process.returncode


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # reaped children, and the workers they reaped
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes-gb", default="0.25,1.0", help="trace sizes to generate and analyse (GB)")
    parser.add_argument("--steps", type=int, default=8, help="training steps per generated trace")
    parser.add_argument("--dir", default=None, help="where the traces are generated (default: a temp dir)")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print("| trace GB | layers per step | generate s | analyze wall s | analyze CPU s | peak RSS MB (all processes) "
          "| MB/s (wall) | exit |\n|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="ngbench-scale-") as tmp:
        for size_gb in [float(s) for s in args.sizes_gb.split(",")]:
            path = Path(tmp) / f"trace-{size_gb}gb.json"
            began = time.perf_counter()
            layers = generate(path, int(size_gb * 1e9), args.steps)
            generated_s = time.perf_counter() - began
            size = path.stat().st_size
            elapsed, cpu_s, rss_mb, code = measure(path, Path(tmp) / f"out-{size_gb}")
            print(f"| {size / 1e9:.2f} | {layers} | {generated_s:.0f} | {elapsed:.1f} | {cpu_s:.1f} | {rss_mb:.0f} | "
                  f"{size / 1e6 / elapsed:.0f} | {code} |", flush=True)
            path.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
