"""Calibrate the profiler's host cost per recorded event on this host, for the reconstruction.

Workloads (loops of one op, sequences of many distinct ops, conv nets and transformers small and larger, a
stack of modules with Python between their calls; none of them a zoo model) run in alternating clean and
profiled blocks, each profiled block between two clean ones. The extra time per iteration under the profiler
is fitted over the workloads as one price per record the trace holds plus a slowdown of the host's time:
  extra_us = price x (op + runtime + driver records per iteration) + host_slowdown x clean_us
where the records are
  op       one cpu_op / record_function range (PyTorch profiler)
  runtime  one CUDA runtime API call recorded by CUPTI (cudaLaunchKernel...)
  driver   one CUDA driver API call (cuLaunchKernelEx: cuBLAS on CUDA 13)
  node     one ONNX Runtime node event, per execution provider (a chain of Add nodes), priced on its own.
One price for every kind, not one per kind: the workloads hold about 2.5 op records per runtime call, so a
fit per kind cannot tell the kinds apart, and its prices flipped from one calibration to the next on one
machine (benchmarks/calibration_variants.py; docs/measurement.md has the figures).
The result is cached per host, library versions and calibration method (`calibration.dir`);
`calibration.mode=force` measures again, `off` prices every record at 0 (the rebuilt timeline then only
re-times blocking calls).
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ngbench.trace.reconstruct import Costs

TORCH_KINDS = ("op", "runtime", "driver")
METHOD = 2           # in the cache key: 1 priced each record kind on its own, 2 prices every record alike
ITERS_PER_BLOCK = 10
ROUNDS = 16    # the fit was unstable at 8 (on one H100 host, twice in a row: op 0.63 then 1.32 µs)
PROFILE_WARMUP = 2
ORT_CHAIN_NODES = 40


@dataclass
class Loop:
    """One micro-loop's result: extra µs per call under the profiler, and records per call by kind."""

    name: str
    extra_us: float
    clean_us: float
    records: dict = field(default_factory=dict)


def host_key(device: str, provider: str | None = None) -> dict:
    """What the costs depend on: the machine, the device kind and the profiler's libraries."""
    import platform as pyplatform
    import socket
    from importlib import metadata

    from ngbench.platform import cpu_model

    key = {"host": socket.gethostname(), "cpu": cpu_model(), "python": pyplatform.python_version(),
           "device": "cuda" if device.startswith("cuda") else "cpu"}
    for package in ("torch", "onnxruntime", "onnxruntime-gpu"):
        try:
            key[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    if key["device"] == "cuda":
        import torch

        key["gpu"] = torch.cuda.get_device_name(device)
        key["cuda"] = torch.version.cuda
    return key


def cache_file(directory: str, key: dict, prefix: str = "calibration") -> Path:
    """Where a per-host measurement keyed by `key` is cached (the profiler costs, the bandwidth probe)."""
    import hashlib

    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return Path(directory) / f"{prefix}-{key['device']}-{digest}.json"


def slowed_host(device: str, provider: str | None = None) -> bool:
    """Whether the calibrated host slowdown applies: only where the host launches work onto a GPU under the
    PyTorch profiler, so that its host time is dispatching work, which the profiler's records slow down. Where
    the device is the host, the host time of a run is mostly its operators' own compute, which they do not:
    on the H100 host's CPU, with a slowdown fitted at 20% on the calibration's small ops, eleven full-size CPU
    cells of the zoo ran only 0.95-1.11 times slower under the profiler, and the rebuild that shrank their
    host time by 20% came out 0.78-0.91 of their clean latency (2026-11-27). ONNX Runtime's own profiler on
    its CPU provider has no such cost either."""
    return device.startswith("cuda") and provider != "cpu"


def costs_for(mode: str, directory: str, device: str, kinds: tuple[str, ...], provider: str | None = None
              ) -> tuple[Costs, dict]:
    """The per-record costs a run needs (`kinds`), from the cache or measured now; and a note for the summary."""
    from ngbench.output import write_json

    if mode == "off" or not kinds:
        return Costs({}), {"mode": mode, "costs_us": {}, "host_slowdown": 0.0}
    key = {**host_key(device), "method": METHOD}
    path = cache_file(directory, key)
    stored = json.loads(path.read_text()) if path.exists() and mode == "cached" else {"key": key, "costs_us": {}, "loops": {}}
    wanted = {"node": f"node:{provider}"}.get
    needed = [wanted(kind) or kind for kind in kinds]
    measured_now = False
    if any(k not in stored["costs_us"] for k in needed if k in TORCH_KINDS):
        from ngbench.measure.timing import host_probe

        before = host_probe()
        costs, loops = calibrate_torch(device)
        stored["costs_us"].update(costs)
        stored["loops"]["torch"] = [loop.__dict__ for loop in loops]
        # the host's speed while the prices were measured (before and after the workloads), to set against
        # each profiled block's (reconciliation.by_block[].host_probe_us, host_probe_mean_us)
        after = host_probe()
        stored.update({k: round((before[k] + after[k]) / 2, 4) for k in before})
        measured_now = True
    node_kind = wanted("node")
    if node_kind in needed and node_kind not in stored["costs_us"]:
        node_us, loop = calibrate_ort(provider, device, stored["costs_us"])
        stored["costs_us"][node_kind] = node_us
        stored["loops"][node_kind] = [loop.__dict__]
        measured_now = True
    if measured_now:
        stored["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        write_json(path, stored)
    costs = {kind: stored["costs_us"].get(wanted(kind) or kind, 0.0) for kind in kinds}
    slowdown = float(stored["costs_us"].get(HOST_SLOWDOWN, 0.0)) if slowed_host(device, provider) else 0.0
    return Costs(costs, slowdown), {"mode": mode, "file": str(path), "measured_now": measured_now,
                                    "measured_at": stored.get("measured_at"), "costs_us": costs,
                                    "host_slowdown": slowdown, "host_probe_us": stored.get("host_probe_us"),
                                    "host_probe_mean_us": stored.get("host_probe_mean_us")}


def probe_scale(calibrated_us: float | None, probes: dict[int, float | None]) -> dict[int, float]:
    """block -> the host's speed probed before that profiled block (`host_probe_us`) over the speed probed at
    calibration: how many times its calibrated price a record costs in that block, the profiler's work being
    host work (docs/measurement.md). {} where either side was not probed (a cache or a run from before the
    probes)."""
    if not calibrated_us or not probes or not all(probes.values()):
        return {}
    return {block: float(probe) / float(calibrated_us) for block, probe in probes.items()}


# ----------------------------------------------------------------------------- torch workloads
def _torch_workloads(device: str) -> dict[str, Callable[[], object]]:
    """Calibration workloads, none of them a zoo model: single ops in loops, a sequence of many distinct
    ops (also with Python between them, and 60 times over: about 25,000 records an iteration, as many as a
    full-size model's), conv nets and transformers written from torch.nn primitives, small and larger, and a
    stack of small modules called with keyword options and returning dicts, as Hugging Face model code does
    (the larger ones only on a GPU host: LARGER).
    Fitted on the small ones alone, the prices under-priced what full-size models pay (a host slowdown of
    0.06 to 0.13 where they needed about 0.2 to 0.35, on an H200 and an H100 host: docs/measurement.md)."""
    import torch
    import torch.nn.functional as F

    a, b, weight = (torch.randn(64, 64, device=device) for _ in range(3))
    index = torch.arange(16, device=device)
    conv, attention = _conv_net().to(device).eval(), _attention_net().to(device).eval()
    image, tokens = torch.randn(1, 3, 32, 32, device=device), torch.randn(1, 32, 64, device=device)

    def mixed(python: int = 0):
        x = F.gelu(F.layer_norm(F.linear(a, weight), (64,)))
        _python_work(python)
        y = torch.softmax(x @ b.t(), -1).view(16, 256).transpose(0, 1).contiguous()
        _python_work(python)
        z = torch.cat([y, y], 0)[index] * 0.5 + 1.0
        _python_work(python)
        z = torch.where(z > 1.0, z, -z).sum(-1)
        _python_work(python)
        return torch.tanh(z).mean() + torch.rsqrt(z.abs() + 1).max()

    workloads = {
        "view": lambda: [a.view(4096) for _ in range(50)],
        "add": lambda: [torch.add(a, b) for _ in range(50)],
        "linear": lambda: [F.linear(a, weight) for _ in range(50)],
        "mixed": lambda: [mixed() for _ in range(5)],
        "mixed_python": lambda: [mixed(400) for _ in range(5)],
        "conv_net": lambda: conv(image),
        "attention_net": lambda: attention(tokens),
    }
    if device.startswith("cuda"):   # see LARGER
        workloads.update(_larger_workloads(device, mixed, image))
    return workloads


def _larger_workloads(device: str, mixed: Callable[[], object], image) -> dict[str, Callable[[], object]]:
    """The LARGER workloads, built on `device`: `mixed` is the small mixed sequence, `image` the conv nets' input."""
    import torch

    wide, deep = _attention_net(width=384, heads=6, layers=10).to(device).eval(), _deep_conv_net().to(device).eval()
    wide_tokens = torch.randn(1, 96, 384, device=device)
    blocks, states = _module_stack().to(device).eval(), torch.randn(1, 64, 128, device=device)

    def module_stack():
        x = states
        for i, block in enumerate(blocks):
            x = block(x, scale=0.5 + 0.01 * i)["hidden"]
        return x

    return {"wide_attention": lambda: wide(wide_tokens), "deep_conv": lambda: deep(image),
            "module_stack": module_stack, "long_mixed": lambda: [mixed() for _ in range(60)]}


# The larger workloads, run only where the host feeds a GPU: that is where the host slowdown they price applies
# (slowed_host), and on the CPU their compute would dominate (the calibration took 40 s on a 2-core machine
# with them, most of it the width-384 transformer's 40 ms an iteration).
LARGER = ("wide_attention", "deep_conv", "module_stack", "long_mixed")
# workloads measured with fewer, shorter blocks than ITERS_PER_BLOCK x ROUNDS: one iteration of long_mixed
# takes about 90 ms on an H100-class host, and its extra time is large enough to be measured in fewer
LOOP_SIZES = {"long_mixed": (3, 8)}


def _python_work(n: int) -> int:
    """Pure-Python work between ops (dict updates): models run plenty of it between their operators, and
    it runs slower while the profiler writes records around it (measured on an H100 host: the same ops cost
    about 50% more profiler time with this interleaved; pure Python alone does not slow down)."""
    table: dict[int, int] = {}
    for i in range(n):
        table[i % 17] = table.get(i % 17, 0) + i
    return len(table)


def _conv_net():
    from torch import nn

    def block(c_in, c_out):
        return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]

    return nn.Sequential(*block(3, 16), nn.MaxPool2d(2), *block(16, 32), *block(32, 32), nn.Upsample(scale_factor=2),
                         *block(32, 16), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))


def _attention_net(width: int = 64, heads: int = 4, layers: int = 4):
    """A pre-norm transformer encoder written from primitives (not torch's fused fast path)."""
    import torch
    from torch import nn

    class Layer(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
            self.qkv, self.out = nn.Linear(width, 3 * width), nn.Linear(width, width)
            self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

        def forward(self, x):
            batch, length, _ = x.shape
            q, k, v = self.qkv(self.norm1(x)).view(batch, length, 3, heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
            weights = torch.softmax(q @ k.transpose(-1, -2) / (width // heads) ** 0.5, dim=-1)
            x = x + self.out((weights @ v).transpose(1, 2).reshape(batch, length, width))
            return x + self.mlp(self.norm2(x))

    return nn.Sequential(*[Layer() for _ in range(layers)])


def _deep_conv_net():
    from torch import nn

    layers = [nn.Conv2d(3, 16, 3, padding=1)]
    for _ in range(24):
        layers += [nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU()]
    return nn.Sequential(*layers)


def _module_stack(depth: int = 16, width: int = 128):
    """Small gated-MLP blocks in the Hugging Face style: keyword options merged into a config dict on each
    call, a dict returned."""
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm, self.proj, self.gate = nn.LayerNorm(width), nn.Linear(width, 2 * width), nn.Linear(width, 2 * width)
            self.out = nn.Linear(2 * width, width)
            self.config = {"act": "gelu", "residual": True, "scale": 0.5}

        def forward(self, x, **kwargs):
            options = {**self.config, **kwargs}
            h = self.norm(x)
            h = torch.nn.functional.gelu(self.proj(h)) * torch.sigmoid(self.gate(h))
            h = self.out(h) * options["scale"]
            return {"hidden": x + h if options["residual"] else h, "aux": None}

    return nn.ModuleList(Block() for _ in range(depth))


def _timed(call: Callable, synchronize: Callable, times: list[float]) -> Callable[[], None]:
    def run():
        import torch

        with torch.inference_mode():
            begin = time.perf_counter()
            call()
            synchronize()
            times.append((time.perf_counter() - begin) * 1e6)

    return run


def _records_per_iteration(trace: str) -> dict[str, float]:
    from ngbench.trace import kineto

    found = kineto.windows(kineto.load_trace(trace))
    counts = {kind: 0 for kind in TORCH_KINDS}
    for window in found:
        for kind, n in window.records["kind"].value_counts().items():
            counts[kind] = counts.get(kind, 0) + int(n)
    counts["op"] -= len(found)                     # the ProfilerStep ranges themselves
    return {kind: counts[kind] / len(found) for kind in TORCH_KINDS}


def measure_loop(name: str, call: Callable, device: str, synchronize: Callable, workdir: str,
                 iters: int = ITERS_PER_BLOCK, rounds: int = ROUNDS, profiled_call: Callable | None = None,
                 kineto: bool = True) -> Loop:
    """Clean and profiled blocks alternating; the profiled ones exactly as ngbench's timed pass runs them (a
    profiler session with PROFILE_WARMUP unrecorded steps, then `iters` active steps). Median extra µs per
    iteration and the Kineto records per iteration. `profiled_call` replaces `call` in the profiled blocks
    (an ONNX Runtime session with its own profiler on); `kineto=False` runs those blocks without Kineto."""
    import os

    from ngbench.trace.torch_profiler import profiled_steps

    trace = os.path.join(workdir, f"{name}.json")
    times: list[float] = []
    run = _timed(call, synchronize, times)
    run_profiled = _timed(profiled_call or call, synchronize, times)
    for _ in range(3):
        run()
        run_profiled()
    def clean_block() -> float:
        times.clear()
        for _ in range(iters):
            run()
        return statistics.median(times)

    clean, profiled = [clean_block()], []
    for _ in range(rounds):
        times.clear()
        if kineto:
            profiled_steps(run_profiled, lambda: None, iters, device, trace, warmup=PROFILE_WARMUP)
        else:
            for _ in range(PROFILE_WARMUP + iters):
                run_profiled()
        profiled.append(statistics.median(times[PROFILE_WARMUP:]))
        clean.append(clean_block())
    # each profiled block against the mean of the clean blocks on either side of it: the host's speed drifts,
    # often by 30% or more within seconds, and a drift that is steady over one round cancels out
    extra = [p - (before + after) / 2 for p, before, after in zip(profiled, clean, clean[1:], strict=False)]
    records = _records_per_iteration(trace) if kineto else {kind: 0.0 for kind in TORCH_KINDS}
    return Loop(name, statistics.median(extra), statistics.median(clean), records)


HOST_SLOWDOWN = "host_slowdown"


def fit_costs(loops: list[Loop], kinds: tuple[str, ...]) -> dict[str, float]:
    """extra_us ≈ price x Σ_kind records[kind] + host_slowdown x clean_us over the workloads: one price for
    every record kind in `kinds`, non-negative, fitted with a robust loss (Cauchy) so that one workload caught
    in a slow phase of the host does not set the prices. Returned per kind (each the same price), and
    host_slowdown."""
    if not any(loop.records.get(k, 0) > 0 for loop in loops for k in kinds):
        return {k: 0.0 for k in kinds}
    price, slowdown = robust_fit([[sum(loop.records.get(k, 0.0) for k in kinds), loop.clean_us] for loop in loops],
                                 [loop.extra_us for loop in loops])
    return {**{k: round(float(price), 4) for k in kinds}, HOST_SLOWDOWN: round(float(slowdown), 4)}


def robust_fit(rows: list[list[float]], extra_us: list[float]):
    """Non-negative coefficients c with rows @ c ≈ extra_us (negative extras taken as 0): non-negative least
    squares as the start, then a Cauchy loss scaled to a tenth of the median extra."""
    import numpy as np
    from scipy.optimize import least_squares, nnls

    matrix, target = np.array(rows, dtype=float), np.maximum(np.array(extra_us, dtype=float), 0.0)
    start, _ = nnls(matrix, target)
    scale = max(float(np.median(target)) * 0.1, 1.0)
    return least_squares(lambda c: matrix @ c - target, start, bounds=(0.0, np.inf), loss="cauchy", f_scale=scale).x


def calibrate_torch(device: str) -> tuple[dict[str, float], list[Loop]]:
    """Cost per op/runtime/driver record on `device` (micro-loops; a few seconds)."""
    import tempfile

    synchronize = _synchronizer(device)
    with tempfile.TemporaryDirectory() as workdir:
        loops = [measure_loop(name, call, device, synchronize, workdir, *LOOP_SIZES.get(name, ()))
                 for name, call in _torch_workloads(device).items()]
    return fit_costs(loops, TORCH_KINDS), loops


def _synchronizer(device: str) -> Callable[[], None]:
    if device.startswith("cuda"):
        import torch

        return lambda: torch.cuda.synchronize(device)
    return lambda: None


# ----------------------------------------------------------------------------- ONNX Runtime node events
CHAIN_IR_VERSION = 8            # opset 17's IR version; every ONNX Runtime since 1.10 loads it


def _chain_model(path: str, nodes: int) -> None:
    import onnx
    from onnx import TensorProto, helper

    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [32, 32]),
              helper.make_tensor_value_info("y", TensorProto.FLOAT, [32, 32])]
    graph_nodes, previous = [], "x"
    for i in range(nodes):
        graph_nodes.append(helper.make_node("Add", [previous, "y"], [f"t{i}"], name=f"add_{i}"))
        previous = f"t{i}"
    output = helper.make_tensor_value_info(previous, TensorProto.FLOAT, [32, 32])
    model = helper.make_model(helper.make_graph(graph_nodes, "chain", inputs, [output]),
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = CHAIN_IR_VERSION   # onnx's newest IR can be newer than the installed ONNX Runtime reads
    onnx.save(model, path)


def calibrate_ort(provider: str, device: str, torch_costs: dict[str, float]) -> tuple[float, Loop]:
    """Cost per ONNX Runtime node event on `provider` (cpu | cuda): a chain of Add nodes run with and
    without ORT's profiler (and, on CUDA, under CUPTI as the ort flow profiles it), less the priced Kineto
    records of the profiled runs."""
    import os
    import tempfile

    import numpy as np
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as workdir:
        path = os.path.join(workdir, "chain.onnx")
        _chain_model(path, ORT_CHAIN_NODES)
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if provider == "cuda" else ["CPUExecutionProvider"]
        feeds = {"x": np.ones((32, 32), np.float32), "y": np.ones((32, 32), np.float32)}

        def session(profile: bool):
            options = ort.SessionOptions()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
            options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            options.log_severity_level = 3
            if profile:
                options.enable_profiling = True
                options.profile_file_prefix = os.path.join(workdir, "chain_profile")
            made = ort.InferenceSession(path, options, providers=providers)
            return lambda: made.run(None, feeds)

        loop = measure_loop(f"ort_{provider}_add_chain", session(False), device, _synchronizer(device), workdir,
                            profiled_call=session(True), kineto=provider == "cuda")
    others = sum(torch_costs.get(k, 0.0) * n for k, n in loop.records.items())
    if provider == "cuda":
        others += torch_costs.get(HOST_SLOWDOWN, 0.0) * loop.clean_us
    loop.records["node"] = float(ORT_CHAIN_NODES)
    return round(max((loop.extra_us - others) / ORT_CHAIN_NODES, 0.0), 4), loop
