"""flow=ort: ONNX export + ONNX Runtime, profiled with ORT's own profiler (+ CUPTI kernels on CUDA).

prepare(): export (cached), optional dynamic int8 quantization (cached), one InferenceSession without
profiling for clean timing. profiler(): a second session with `enable_profiling` beside it (ORT can only
profile from a session's start, and profiling the clean loop would distort it), so that clean and
profiled blocks can alternate; on CUDA each profiled block is wrapped in torch.profiler (CUPTI) so GPU
kernels can be matched to ORT nodes by launch window. See docs/flows-ort-trt.md.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from ngbench.errors import UserError, first_line, require
from ngbench.flows.base import RunContext
from ngbench.flows.onnx.flow import OnnxFlow
from ngbench.flows.ort.config import EP_NAMES, OrtConfig
from ngbench.trace.reconstruct import Costs
from ngbench.trace.result import ProfileResult

LEVELS = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC",
          "extended": "ORT_ENABLE_EXTENDED", "all": "ORT_ENABLE_ALL"}
SAVE_OPTIMIZED_MAX_BYTES = 1_500_000_000   # above this the optimized graph is not written (2 GB protobuf cap)
INT8_FILE = "model.int8-dynamic.onnx"
CPU_FALLBACK_WARN_SHARE = 0.10   # above this share of the time on the CPU provider, a GPU session warns
FLOAT_TYPES = (1, 10, 11)         # onnx.TensorProto FLOAT, FLOAT16, DOUBLE: the weights shared


def onnx_bytes(path: str) -> int:
    """Size of an ONNX model with its external data (`model.onnx` + `model.onnx.data`, ...): the proto alone
    of a 7B model is a few MB."""
    model = Path(path)
    return model.stat().st_size + sum(p.stat().st_size for p in model.parent.glob(model.name + ".*"))


def check_quantize_room(model_bytes: int, cache_dir: Path) -> None:
    """ONNX Runtime's quantizer saves a full copy of the fp32 model in a temporary directory (TMPDIR) and writes
    the int8 model (about a quarter of it) beside the cache entry: stop in one line, before minutes of work,
    when either disk lacks the room (a 7B model needs 27 GB + 7 GB)."""
    gib = 2**30
    temp = tempfile.gettempdir()
    needs = {temp: model_bytes, str(cache_dir): model_bytes // 4}
    if os.stat(temp).st_dev == os.stat(cache_dir).st_dev:
        needs = {str(cache_dir): model_bytes + model_bytes // 4}
    for where, need in needs.items():
        free = shutil.disk_usage(where).free
        if free < need:
            raise UserError(f"int8 quantization of this {model_bytes / gib:.1f} GiB model needs about {need / gib:.1f} "
                            f"GiB free on {where} (the quantizer's copy in TMPDIR={temp} and the int8 model in the "
                            f"cache), which has {free / gib:.1f} GiB: free some, or point TMPDIR elsewhere "
                            "(e.g. TMPDIR=/dev/shm)")


def cpu_fallback(ops, cpu_nodes: int) -> tuple[dict, list[str]]:
    """The nodes a GPU session left on the CPU provider (the paper's Case Study 1: ORT's CUDA provider has no
    MatMulInteger/DynamicQuantizeLinear for dynamic int8, so they run on the CPU with Memcpy nodes around
    them): (facts: how many, of which op types, their share of the profiled wall time; warnings)."""
    on_cpu = ops[ops["provider"] == EP_NAMES["cpu"]]
    first = on_cpu[on_cpu["iteration"] == ops["iteration"].min()]
    total_us = float(ops["wall_us"].sum())
    facts = {"cpu_nodes": int(cpu_nodes),
             "cpu_node_types": {str(k): int(v) for k, v in first["op"].value_counts().sort_index().items()},
             "cpu_wall_share": float(on_cpu["wall_us"].sum()) / total_us if total_us > 0 else 0.0}
    if facts["cpu_wall_share"] <= CPU_FALLBACK_WARN_SHARE:
        return facts, []
    kinds = ", ".join(f"{op} x{n}" for op, n in sorted(facts["cpu_node_types"].items(), key=lambda kv: -kv[1])[:4])
    return facts, [f"ONNX Runtime ran {cpu_nodes} nodes on the CPU provider ({kinds}), "
                   f"{100 * facts['cpu_wall_share']:.0f}% of the time: its GPU provider lacks kernels for "
                   "them; int8 on this GPU runs on flow=torch +quant=int8 (LLM.int8) or flow=trt"]


def shared_weights(model_path: str, device: str) -> dict:
    """The model's weights (floating-point initializers of two or more dimensions), each loaded once into a torch
    tensor on `device` and wrapped, without a copy, as an OrtValue for SessionOptions.add_initializer (which takes
    only memory the caller owns): sessions given the same values use that memory in place, where it sits on the
    device the session planned for it (`flow.share_weights`)."""
    import onnx
    import torch
    from onnx import numpy_helper

    model = onnx.load(model_path, load_external_data=False)
    base = str(Path(model_path).parent)
    values = {}
    for tensor in model.graph.initializer:
        if len(tensor.dims) < 2 or tensor.data_type not in FLOAT_TYPES:
            continue
        values[tensor.name] = _ortvalue(torch.from_numpy(numpy_helper.to_array(tensor, base).copy()).to(device))
    return values


def _ortvalue(tensor):
    """An OrtValue over a torch tensor's memory (DLPack; the value keeps the tensor alive)."""
    import onnxruntime
    from onnxruntime.capi import _pybind_state

    from_dlpack = getattr(_pybind_state.OrtValue, "from_dlpack", None)
    if from_dlpack is None:
        raise UserError(f"flow.share_weights needs OrtValue.from_dlpack, which onnxruntime {onnxruntime.__version__} "
                        "lacks: upgrade onnxruntime-gpu, or set flow.share_weights=false")
    capsule = tensor.__dlpack__()
    try:
        return onnxruntime.OrtValue(from_dlpack(capsule))
    except TypeError:                  # onnxruntime before 1.32: from_dlpack(capsule, is_bool_tensor)
        return onnxruntime.OrtValue(from_dlpack(capsule, False))


class OrtSession:
    """One InferenceSession with its inputs bound: numpy feeds on the CPU, io_binding on a GPU (inputs read in
    place from the torch CUDA tensors, outputs left on the GPU)."""

    def __init__(self, model_path: str, flow: OrtFlow, profile_prefix: str | None = None,
                 optimized_path: str | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, LEVELS[str(flow.cfg.graph_optimization)])
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL   # node events never overlap
        options.log_severity_level = 3        # warnings such as "the optimized model may be hardware specific"
        allowed = len(os.sched_getaffinity(0))
        if allowed < (os.cpu_count() or allowed):      # pinned (pin_cpus, taskset): one thread per CPU it may use
            options.intra_op_num_threads = allowed
        if profile_prefix:
            options.enable_profiling = True
            options.profile_file_prefix = profile_prefix
        if optimized_path:
            options.optimized_model_filepath = optimized_path
        for name, value in flow.shared.items():
            options.add_initializer(name, value)
        try:
            self.session = ort.InferenceSession(model_path, options, providers=flow.provider_list(model_path))
        except Exception as exc:  # noqa: BLE001
            raise UserError(f"ONNX Runtime could not load {model_path} on provider={flow.provider}: "
                            f"{first_line(exc)[:300]}") from exc
        self.run_options = None
        if flow.cfg.arena_shrinkage:
            self.run_options = ort.RunOptions()
            arena = "cpu:0" if flow.provider == "cpu" else f"gpu:{flow.ctx.device_index}"
            self.run_options.add_run_config_entry("memory.enable_memory_arena_shrinkage", arena)
        wanted = {i.name for i in self.session.get_inputs()}
        feeds = {k: v for k, v in flow.inputs.items() if k in wanted}
        self.binding = None
        if flow.provider == "cpu":
            self.feeds = {k: v.detach().cpu().numpy() for k, v in feeds.items()}
        else:
            self.binding = self._bind(feeds, flow.ctx.device_index)

    def _bind(self, feeds: dict, device_id: int):
        import numpy as np
        import torch

        dtypes = {torch.float32: np.float32, torch.float16: np.float16, torch.int64: np.int64,
                  torch.int32: np.int32, torch.bool: np.bool_, torch.uint8: np.uint8, torch.int8: np.int8}
        binding = self.session.io_binding()
        torch.cuda.synchronize()
        self.bound = {}
        for name, tensor in feeds.items():
            tensor = self.bound[name] = tensor.contiguous()           # kept alive with the binding
            binding.bind_input(name, "cuda", device_id, dtypes[tensor.dtype], list(tensor.shape), tensor.data_ptr())
        for output in self.session.get_outputs():
            binding.bind_output(output.name, "cuda", device_id)
        return binding

    def run(self) -> Any:
        if self.binding is not None:
            self.session.run_with_iobinding(self.binding, self.run_options)
            return self.binding
        return self.session.run(None, self.feeds, self.run_options)


class OrtFlow(OnnxFlow):
    """ONNX Runtime inference session on the CPU, CUDA or TensorRT execution provider."""

    record_kinds = ("node", "op", "runtime", "driver")
    cfg: OrtConfig

    def __init__(self, ctx: RunContext, cfg: OrtConfig):
        super().__init__(ctx, cfg)
        self.provider = cfg.resolved_provider(ctx)
        self.model_path: str | None = None
        self.clean: OrtSession | None = None
        self.shared: dict = {}            # OrtValues both sessions use in place (flow.share_weights)

    # ------------------------------------------------------------------------------- prepare
    def prepare(self, bundle) -> None:
        """Export (cached), quantize when asked (cached), build the clean-timing session."""
        require("onnxruntime", "onnxruntime", "flow=ort")
        exported = self.export(bundle)
        self.model_path = exported.path
        if self.ctx.quant and self.ctx.quant.name == "int8":
            self.model_path = self._quantize(exported.path)
        start = time.perf_counter()
        if self.cfg.share_weights and self.provider == "cuda" and not self.ctx.quant:
            self.shared = shared_weights(self.model_path, f"cuda:{self.ctx.device_index}")
            self._facts["shared_weights"] = {
                "initializers": len(self.shared), "load_s": round(time.perf_counter() - start, 3),
                "mib": round(sum(v.tensor_size_in_bytes() for v in self.shared.values()) / 2**20, 1)}
            start = time.perf_counter()
        self.clean = OrtSession(self.model_path, self)
        self._facts["session_build_s"] = round(time.perf_counter() - start, 3)
        import onnxruntime as ort

        self._facts.update(ort_version=ort.__version__, providers=self.clean.session.get_providers(),
                           graph_optimization=str(self.cfg.graph_optimization),
                           arena_shrinkage=self.cfg.arena_shrinkage)

    def _quantize(self, source: str) -> str:
        """Dynamic int8 (onnxruntime.quantization.quantize_dynamic), cached beside the fp32 export."""
        from onnxruntime.quantization import QuantType, quantize_dynamic

        target = Path(source).with_name(INT8_FILE)
        self._facts["quantization"] = "dynamic int8 (onnxruntime.quantization.quantize_dynamic, s8 weights)"
        if target.exists():
            self._facts["quantize_cache_hit"] = True
            return str(target)
        start = time.perf_counter()
        size = onnx_bytes(source)
        check_quantize_room(size, target.parent)
        tmp = Path(tempfile.mkdtemp(prefix=".int8.", dir=target.parent))
        try:
            big = size > SAVE_OPTIMIZED_MAX_BYTES
            quantize_dynamic(source, str(tmp / INT8_FILE), weight_type=QuantType.QInt8,
                             use_external_data_format=big)
            for item in tmp.iterdir():                      # data files first, the model file last
                if item.name != INT8_FILE:
                    os.replace(item, target.parent / item.name)
            os.replace(tmp / INT8_FILE, target)
        except Exception as exc:  # noqa: BLE001
            raise UserError(f"int8 dynamic quantization of {source} failed: {first_line(exc)}") from exc
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        self._facts.update(quantize_cache_hit=False, quantize_s=round(time.perf_counter() - start, 3))
        return str(target)

    def provider_list(self, model_path: str) -> list:
        ep = EP_NAMES[self.provider]
        if self.provider == "cpu":
            return [ep]
        device_id = self.ctx.device_index
        cuda = (EP_NAMES["cuda"], {"device_id": device_id})
        if self.provider == "cuda":
            return [cuda, EP_NAMES["cpu"]]
        trt = (ep, {"device_id": device_id, "trt_fp16_enable": self.ctx.precision == "fp16",
                    "trt_engine_cache_enable": True,
                    "trt_engine_cache_path": str(Path(model_path).parent / "ort_trt_engines")})
        return [trt, cuda, EP_NAMES["cpu"]]

    # ------------------------------------------------------------------------------- run
    def infer(self) -> Any:
        """One InferenceSession run of the clean session (CPU: numpy feeds; CUDA/TensorRT: io_binding)."""
        return self.clean.run()

    def profiler(self) -> OrtProfiler:
        return OrtProfiler(self)

    def scopes(self, optimized: str | None) -> dict:
        """Module scope of every node of the graph ORT ran (fused nodes resolved to their sources)."""
        import onnx

        from ngbench.trace.onnx_scopes import producers_of, resolve_scopes

        known = dict(self.exported.scopes)
        if not optimized or not os.path.exists(optimized):
            return known
        original = onnx.load(self.exported.path, load_external_data=False)
        graph = onnx.load(optimized, load_external_data=False).graph
        nodes = [(n.name, list(n.input), list(n.output)) for n in graph.node]
        return resolve_scopes(nodes, known, producers_of(original))

    def record_providers(self, ops) -> None:
        from ngbench.trace.ort_profile import nodes_by_provider

        counts = nodes_by_provider(ops)
        first = ops[ops["iteration"] == ops["iteration"].min()]
        self._facts["nodes_by_provider"] = counts
        self._facts["memcpy_nodes"] = int(first["op"].str.startswith("Memcpy").sum())
        if self.provider != "cpu":
            facts, self._warnings = cpu_fallback(ops, counts.get(EP_NAMES["cpu"], 0))   # Case Study 1
            self._facts.update(facts)


class OrtProfiler:
    """A second session with ORT's profiler on, beside the clean one; each block runs `profile_warmup`
    unmarked and `iters` marked runs (on a GPU inside a torch.profiler session, for the CUPTI kernels)."""

    def __init__(self, flow: OrtFlow):
        self.flow = flow
        self.work = Path(tempfile.mkdtemp(prefix="ort-profile-", dir=_mkdir(flow.ctx.run_dir)))
        self.optimized = None           # TensorRT-compiled subgraphs cannot be serialised: no graph then
        if flow.provider != "tensorrt" and onnx_bytes(flow.model_path) < SAVE_OPTIMIZED_MAX_BYTES:
            self.optimized = str(self.work / "optimized.onnx")
        self.session = OrtSession(flow.model_path, flow, profile_prefix=str(self.work / "ort_profile"),
                                  optimized_path=self.optimized)
        self.runs = 0
        self.marked: list[int] = []          # positions of the marked runs among all runs of the session
        self.block_of: list[int] = []        # the block of each marked run
        self.kineto: list[str] = []

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.session = None
        shutil.rmtree(self.work, ignore_errors=True)
        return False

    def block(self, iters: int) -> None:
        warmup = self.flow.ctx.profile_warmup
        if self.session.binding is None:
            for _ in range(warmup + iters):
                self.session.run()
        else:
            from ngbench.trace.torch_profiler import profiled_steps

            path = str(self.work / f"kineto{len(self.kineto)}.json")
            profiled_steps(self.session.run, self.flow.synchronize, iters, self.flow.ctx.device, path, warmup=warmup)
            self.kineto.append(path)
        self.block_of += [len(set(self.block_of))] * iters
        self.marked += list(range(self.runs + warmup, self.runs + warmup + iters))
        self.runs += warmup + iters

    def result(self, costs: Costs) -> ProfileResult:
        from ngbench.trace import ort_profile
        from ngbench.trace.kineto import load_trace
        from ngbench.trace.result import attribute_windows

        start_ns = self.session.session.get_profiling_start_time_ns()
        events = ort_profile.load_profile(self.session.session.end_profiling())
        scopes = self.flow.scopes(self.optimized)
        notes = {}
        if not self.kineto:
            windows = ort_profile.cpu_windows(events, scopes, self.marked)
        else:
            tables = [load_trace(path) for path in self.kineto]
            windows, misfit = ort_profile.cuda_windows(events, scopes, self.marked, tables, start_ns)
            notes["clock_misfit_us"] = round(misfit, 3)
        result = attribute_windows(windows, costs, self.block_of)
        result.notes.update(notes)
        self.flow.record_providers(result.ops)
        if self.flow.ctx.save_trace:
            _keep_trace(events, Path(self.flow.ctx.run_dir))
        return result


def _mkdir(path: str) -> str:
    Path(path).mkdir(parents=True, exist_ok=True)
    return path


def _keep_trace(events: list, run_dir: Path) -> None:
    import json

    from ngbench.output import atomic_write_bytes

    atomic_write_bytes(run_dir / "trace.json", lambda tmp: Path(tmp).write_text(json.dumps({"traceEvents": events})))
