"""Calibrate the profiler's host cost per recorded event on this host, for the reconstruction.

Micro-loops of small calls (a view, an add, a linear layer...) run in alternating clean and profiled
blocks; the extra time per call under the profiler is fitted, by non-negative least squares over the loops,
as a cost per record kind times the records the trace holds per call:
  op       one cpu_op / record_function range (PyTorch profiler)
  runtime  one CUDA runtime API call recorded by CUPTI (cudaLaunchKernel...)
  driver   one CUDA driver API call (cuLaunchKernelEx: cuBLAS on CUDA 13)
  node     one ONNX Runtime node event, per execution provider (a chain of Add nodes)
The result is cached per host and library versions (`calibration.dir`); `calibration.mode=force` measures
again, `off` prices every record at 0 (the rebuilt timeline then only re-times blocking calls).
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ngbench.trace.reconstruct import Costs

MODES = ("cached", "force", "off")
TORCH_KINDS = ("op", "runtime", "driver")
CALLS_PER_BLOCK = 200
ROUNDS = 5
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


def _cache_file(directory: str, key: dict) -> Path:
    import hashlib

    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return Path(directory) / f"calibration-{key['device']}-{digest}.json"


def costs_for(mode: str, directory: str, device: str, kinds: tuple[str, ...], provider: str | None = None
              ) -> tuple[Costs, dict]:
    """The per-record costs a run needs (`kinds`), from the cache or measured now; and a note for the summary."""
    from ngbench.errors import UserError
    from ngbench.output import write_json

    if mode not in MODES:
        raise UserError(f"calibration.mode={mode!r} is not valid; valid: {', '.join(MODES)}")
    if mode == "off" or not kinds:
        return Costs({}), {"mode": mode, "costs_us": {}}
    key = host_key(device)
    path = _cache_file(directory, key)
    stored = json.loads(path.read_text()) if path.exists() and mode == "cached" else {"key": key, "costs_us": {}, "loops": {}}
    wanted = {"node": f"node:{provider}"}.get
    needed = [wanted(kind) or kind for kind in kinds]
    measured_now = False
    if any(k not in stored["costs_us"] for k in needed if k in TORCH_KINDS):
        costs, loops = calibrate_torch(device)
        stored["costs_us"].update(costs)
        stored["loops"]["torch"] = [loop.__dict__ for loop in loops]
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
    return Costs(costs), {"mode": mode, "file": str(path), "measured_now": measured_now,
                          "measured_at": stored.get("measured_at"), "costs_us": costs}


# ----------------------------------------------------------------------------- torch micro-loops
def _torch_loops(device: str) -> dict[str, Callable[[], object]]:
    import torch
    import torch.nn.functional as F

    a = torch.randn(32, 32, device=device)
    b = torch.randn(32, 32, device=device)
    out = torch.empty(32, 32, device=device)
    weight = torch.randn(32, 32, device=device)
    norm = torch.nn.LayerNorm(32).to(device)
    return {
        "view": lambda: a.view(1024),
        "add_out": lambda: torch.add(a, b, out=out),
        "relu": lambda: torch.relu(a),
        "linear": lambda: F.linear(a, weight),
        "cat": lambda: torch.cat([a, b]),
        "softmax": lambda: torch.softmax(a, -1),
        "layer_norm": lambda: norm(a),
        "transpose_contiguous": lambda: a.t().contiguous(),
    }


def _run_calls(call: Callable, calls: int, synchronize: Callable) -> float:
    import torch

    with torch.inference_mode():
        begin = time.perf_counter()
        for _ in range(calls):
            call()
        synchronize()
        return time.perf_counter() - begin


def _profiled_calls(call: Callable, calls: int, synchronize: Callable, device: str, trace: str) -> float:
    """Time `calls` calls inside the active step of a profiler session (one warm-up step before it)."""
    from ngbench.trace.torch_profiler import profiled_steps

    seconds: list[float] = []
    profiled_steps(lambda: seconds.append(_run_calls(call, calls, synchronize)), lambda: None, 1, device, trace,
                   warmup=1)
    return seconds[-1]


def _records_per_call(trace: str, calls: int) -> dict[str, float]:
    from ngbench.trace import kineto

    (window,) = kineto.windows(kineto.load_trace(trace))
    counts = window.records["kind"].value_counts().to_dict()
    counts["op"] = counts.get("op", 0) - 1        # the ProfilerStep range itself
    return {kind: counts.get(kind, 0) / calls for kind in TORCH_KINDS}


def measure_loop(name: str, call: Callable, device: str, synchronize: Callable, workdir: str,
                 calls: int = CALLS_PER_BLOCK, rounds: int = ROUNDS) -> Loop:
    """Alternate clean and profiled blocks of `calls` calls; the median difference per call."""
    import os

    trace = os.path.join(workdir, f"{name}.json")
    clean, profiled = [], []
    _run_calls(call, calls, synchronize)                    # warm caches and allocator
    for _ in range(rounds):
        clean.append(_run_calls(call, calls, synchronize))
        profiled.append(_profiled_calls(call, calls, synchronize, device, trace))
    extra = (statistics.median(profiled) - statistics.median(clean)) / calls * 1e6
    return Loop(name, extra, statistics.median(clean) / calls * 1e6, _records_per_call(trace, calls))


def fit_costs(loops: list[Loop], kinds: tuple[str, ...]) -> dict[str, float]:
    """Non-negative least squares: extra_us ≈ Σ_kind cost[kind] x records[kind] over the loops."""
    import numpy as np
    from scipy.optimize import nnls

    used = [k for k in kinds if any(loop.records.get(k, 0) > 0 for loop in loops)]
    if not used:
        return {k: 0.0 for k in kinds}
    matrix = np.array([[loop.records.get(k, 0.0) for k in used] for loop in loops])
    target = np.array([max(loop.extra_us, 0.0) for loop in loops])
    solution, _ = nnls(matrix, target)
    fitted = dict(zip(used, (float(v) for v in solution), strict=True))
    return {k: round(fitted.get(k, 0.0), 4) for k in kinds}


def calibrate_torch(device: str) -> tuple[dict[str, float], list[Loop]]:
    """Cost per op/runtime/driver record on `device` (micro-loops; a few seconds)."""
    import tempfile

    synchronize = _synchronizer(device)
    with tempfile.TemporaryDirectory() as workdir:
        loops = [measure_loop(name, call, device, synchronize, workdir)
                 for name, call in _torch_loops(device).items()]
    return fit_costs(loops, TORCH_KINDS), loops


def _synchronizer(device: str) -> Callable[[], None]:
    if device.startswith("cuda"):
        import torch

        return lambda: torch.cuda.synchronize(device)
    return lambda: None


# ----------------------------------------------------------------------------- ONNX Runtime node events
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
    onnx.save(model, path)


def calibrate_ort(provider: str, device: str, torch_costs: dict[str, float]) -> tuple[float, Loop]:
    """Cost per ONNX Runtime node event on `provider` (cpu | cuda): a chain of Add nodes run with and
    without ORT's profiler (and, on CUDA, under CUPTI as the ort flow profiles it)."""
    import os
    import tempfile

    import numpy as np
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as workdir:
        path = os.path.join(workdir, "chain.onnx")
        _chain_model(path, ORT_CHAIN_NODES)
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if provider == "cuda" else ["CPUExecutionProvider"]

        def session(profile: bool):
            options = ort.SessionOptions()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
            options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            options.log_severity_level = 3
            if profile:
                options.enable_profiling = True
                options.profile_file_prefix = os.path.join(workdir, "chain_profile")
            made = ort.InferenceSession(path, options, providers=providers)
            feeds = {"x": np.ones((32, 32), np.float32), "y": np.ones((32, 32), np.float32)}
            return made, feeds

        clean_session, feeds = session(False)
        profiled_session, _ = session(True)
        synchronize = _synchronizer(device)
        calls = 50
        run_clean = lambda: clean_session.run(None, feeds)          # noqa: E731
        run_profiled = lambda: profiled_session.run(None, feeds)    # noqa: E731
        _run_calls(run_clean, calls, synchronize)
        clean, profiled = [], []
        trace = os.path.join(workdir, "kineto.json")
        for _ in range(ROUNDS):
            clean.append(_run_calls(run_clean, calls, synchronize))
            if provider == "cuda":
                profiled.append(_profiled_calls(run_profiled, calls, synchronize, device, trace))
            else:
                profiled.append(_run_calls(run_profiled, calls, synchronize))
        profiled_session.end_profiling()
    extra = (statistics.median(profiled) - statistics.median(clean)) / calls * 1e6
    records = _records_per_call(trace, calls) if provider == "cuda" else {k: 0.0 for k in TORCH_KINDS}
    others = sum(torch_costs.get(k, 0.0) * n for k, n in records.items())
    node_us = max((extra - others) / ORT_CHAIN_NODES, 0.0)
    return round(node_us, 4), Loop(f"ort_{provider}_add_chain", extra, statistics.median(clean) / calls * 1e6,
                                   {**records, "node": float(ORT_CHAIN_NODES)})
