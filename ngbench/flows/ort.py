"""flow=ort: ONNX export + ONNX Runtime, profiled with ORT's own profiler (+ CUPTI kernels on CUDA).

prepare(): export (cached), optional dynamic int8 quantization (cached), one InferenceSession without
profiling for clean timing. profile(): a second session with `enable_profiling` replaces it (ORT can
only profile from a session's start, and profiling the clean loop would distort it); on CUDA the runs
are wrapped in torch.profiler (CUPTI) so GPU kernels can be matched to ORT nodes by launch window.
See docs/flows-ort-trt.md.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from ngbench.errors import UserError, first_line, require
from ngbench.flows.base import Flow, ProfileResult, RunContext

PROVIDERS = ("auto", "cpu", "cuda", "tensorrt")
LEVELS = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC",
          "extended": "ORT_ENABLE_EXTENDED", "all": "ORT_ENABLE_ALL"}
EP_NAMES = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider",
            "tensorrt": "TensorrtExecutionProvider"}
SAVE_OPTIMIZED_MAX_BYTES = 1_500_000_000   # above this the optimized graph is not written (2 GB protobuf cap)
INT8_FILE = "model.int8-dynamic.onnx"


def _ep_missing(provider: str) -> str | None:
    """Why the execution provider cannot be used with the installed onnxruntime (None when it can)."""
    import importlib.util

    if importlib.util.find_spec("onnxruntime") is None:
        return "flow=ort needs the Python package 'onnxruntime': pip install onnxruntime (or onnxruntime-gpu)"
    import onnxruntime as ort

    available = ort.get_available_providers()
    if provider == "cuda" and EP_NAMES["cuda"] not in available:
        return ("flow=ort provider=cuda needs onnxruntime with CUDAExecutionProvider (this one has "
                f"{', '.join(available)}): pip uninstall onnxruntime && pip install onnxruntime-gpu")
    if provider == "tensorrt" and (EP_NAMES["tensorrt"] not in available
                                   or importlib.util.find_spec("tensorrt") is None):
        return ("flow=ort provider=tensorrt needs onnxruntime-gpu with TensorrtExecutionProvider and "
                "TensorRT itself: pip install onnxruntime-gpu tensorrt")
    return None


def resolve_provider(provider: str, ctx: RunContext) -> str:
    """`auto` follows the platform: the CUDA provider on a GPU, the CPU provider otherwise."""
    if provider == "auto":
        return "cuda" if ctx.is_cuda else "cpu"
    return provider


def _quant_name(quant: dict | None) -> str | None:
    return (quant or {}).get("name") if quant else None


class OrtFlow(Flow):
    """ONNX Runtime inference session on the CPU, CUDA or TensorRT execution provider."""

    name = "ort"

    def __init__(self, name: str | None = None, provider: str = "auto", graph_optimization: str = "all",
                 opset: int = 18, cache_dir: str = "outputs/onnx_cache", **options: Any):
        super().__init__(name, **options)
        self.provider, self.graph_optimization = provider, graph_optimization
        self.opset, self.cache_dir = int(opset), cache_dir
        self._session = self._binding = self._feeds = self._exported = self._model_path = None
        self._device_id, self._precision = 0, "fp32"
        self._inputs: dict = {}
        self._bound: dict = {}

    @classmethod
    def unsupported_reason(cls, ctx: RunContext, options: dict) -> str | None:
        """Impossible flow=ort combinations, found before any model is built."""
        provider = resolve_provider(options.get("provider", "auto"), ctx)
        level = options.get("graph_optimization", "all")
        quant = _quant_name(ctx.quant)
        if provider not in PROVIDERS:
            return f"flow.provider={provider} is not valid for flow=ort: use one of {'|'.join(PROVIDERS)}"
        if level not in LEVELS:
            return f"flow.graph_optimization={level} is not valid: use one of {'|'.join(LEVELS)}"
        if provider != "cpu" and not ctx.is_cuda:
            return f"flow=ort provider={provider} needs a GPU platform: use platform=cuda, or flow.provider=cpu"
        if provider == "cpu" and ctx.is_cuda:
            return "flow=ort provider=cpu runs on the CPU: use platform=cpu, or flow.provider=cuda on this GPU"
        if ctx.precision == "bf16":
            return "flow=ort does not run bf16 models (few ONNX Runtime kernels): use precision=fp32 or fp16"
        if provider == "cpu" and ctx.precision != "fp32":
            return (f"flow=ort provider=cpu runs fp32 only (its CPU kernels lack {ctx.precision}): "
                    "use precision=fp32 or flow.provider=cuda")
        if quant not in (None, "int8"):
            return f"+quant={quant} is not available on flow=ort: use +quant=int8 (dynamic int8)"
        if quant == "int8" and ctx.precision != "fp32":
            return "+quant=int8 on flow=ort quantizes an fp32 export dynamically: use precision=fp32"
        return _ep_missing(provider)

    # ------------------------------------------------------------------------------- prepare
    def prepare(self, bundle, ctx: RunContext) -> None:
        """Export (cached), quantize when asked (cached), build the clean-timing session and inputs."""
        from ngbench.flows.onnx_export import export_onnx, flat_inputs

        self.provider = resolve_provider(self.provider, ctx)
        reason = self.unsupported_reason(ctx, {"provider": self.provider,
                                               "graph_optimization": self.graph_optimization})
        if reason:
            raise UserError(reason)
        require("onnxruntime", "onnxruntime", "flow=ort")
        self._device_id = int(ctx.device.split(":")[1]) if ":" in ctx.device else 0
        self._precision = ctx.precision
        self._exported = export_onnx(bundle, model_name=ctx.model_name, model_cfg=ctx.model_cfg,
                                     precision=ctx.precision, opset=self.opset, cache_dir=self.cache_dir)
        self._model_path = self._exported.path
        self._facts.update(exporter=self._exported.exporter, export_s=round(self._exported.export_s, 3),
                           export_cache_hit=self._exported.cache_hit, onnx_path=self._exported.path,
                           opset=self._exported.opset)
        if _quant_name(ctx.quant) == "int8":
            self._model_path = self._quantize(self._exported.path)
        tensors, _ = flat_inputs(bundle)
        self._inputs = dict(zip(self._exported.input_names, tensors, strict=True))
        start = time.perf_counter()
        self._open(profile_prefix=None)
        self._facts["session_build_s"] = round(time.perf_counter() - start, 3)
        import onnxruntime as ort

        self._facts.update(ort_version=ort.__version__, providers=self._session.get_providers(),
                           graph_optimization=self.graph_optimization)

    def _quantize(self, source: str) -> str:
        """Dynamic int8 (onnxruntime.quantization.quantize_dynamic), cached beside the fp32 export."""
        from onnxruntime.quantization import QuantType, quantize_dynamic

        target = Path(source).with_name(INT8_FILE)
        self._facts["quantization"] = "dynamic int8 (onnxruntime.quantization.quantize_dynamic, s8 weights)"
        if target.exists():
            self._facts["quantize_cache_hit"] = True
            return str(target)
        start = time.perf_counter()
        tmp = Path(tempfile.mkdtemp(prefix=".int8.", dir=target.parent))
        try:
            big = os.path.getsize(source) > SAVE_OPTIMIZED_MAX_BYTES
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

    def _provider_list(self) -> list:
        ep = EP_NAMES[self.provider]
        if self.provider == "cpu":
            return [ep]
        cuda = (EP_NAMES["cuda"], {"device_id": self._device_id})
        if self.provider == "cuda":
            return [cuda, EP_NAMES["cpu"]]
        trt = (ep, {"device_id": self._device_id, "trt_fp16_enable": self._precision == "fp16",
                    "trt_engine_cache_enable": True,
                    "trt_engine_cache_path": str(Path(self._model_path).parent / "ort_trt_engines")})
        return [trt, cuda, EP_NAMES["cpu"]]

    def _open(self, profile_prefix: str | None, optimized_path: str | None = None) -> None:
        """(Re)create the session (with profiling when `profile_prefix` is set) and bind the inputs."""
        import onnxruntime as ort

        self._session = self._binding = None
        options = ort.SessionOptions()
        options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, LEVELS[self.graph_optimization])
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL   # node events never overlap
        if profile_prefix:
            options.enable_profiling = True
            options.profile_file_prefix = profile_prefix
        if optimized_path:
            options.optimized_model_filepath = optimized_path
            options.log_severity_level = 3        # not the "optimized model may be hardware specific" warning
        try:
            self._session = ort.InferenceSession(self._model_path, options, providers=self._provider_list())
        except Exception as exc:  # noqa: BLE001
            raise UserError(f"ONNX Runtime could not load {self._model_path} on provider={self.provider}: "
                            f"{first_line(exc)[:300]}") from exc
        wanted = {i.name for i in self._session.get_inputs()}
        feeds = {k: v for k, v in self._inputs.items() if k in wanted}
        if self.provider == "cpu":
            self._feeds = {k: v.detach().cpu().numpy() for k, v in feeds.items()}
        else:
            self._binding = self._bind(feeds)

    def _bind(self, feeds: dict):
        """io_binding: inputs read in place from the torch CUDA tensors, outputs left on the GPU."""
        import numpy as np
        import torch

        dtypes = {torch.float32: np.float32, torch.float16: np.float16, torch.int64: np.int64,
                  torch.int32: np.int32, torch.bool: np.bool_, torch.uint8: np.uint8, torch.int8: np.int8}
        binding = self._session.io_binding()
        torch.cuda.synchronize()
        for name, tensor in feeds.items():
            tensor = feeds[name] = tensor.contiguous()
            binding.bind_input(name, "cuda", self._device_id, dtypes[tensor.dtype], list(tensor.shape),
                               tensor.data_ptr())
        for output in self._session.get_outputs():
            binding.bind_output(output.name, "cuda", self._device_id)
        self._bound = feeds                                   # keep the tensors alive
        return binding

    # ------------------------------------------------------------------------------- run
    def infer(self) -> Any:
        """One InferenceSession run (CPU: numpy feeds; CUDA/TensorRT: io_binding)."""
        if self._binding is not None:
            self._session.run_with_iobinding(self._binding)
            return self._binding
        return self._session.run(None, self._feeds)

    def profile(self, iters: int, ctx: RunContext) -> ProfileResult:
        """Profile `iters` runs with ORT's profiler (plus CUPTI kernels on a GPU provider)."""
        from ngbench.trace import ort_profile

        run_dir = Path(ctx.run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="ort-profile-", dir=run_dir))
        optimized = None                # TensorRT-compiled subgraphs cannot be serialised: no graph then
        if self.provider != "tensorrt" and os.path.getsize(self._model_path) < SAVE_OPTIMIZED_MAX_BYTES:
            optimized = str(work / "optimized.onnx")
        self._open(profile_prefix=str(work / "ort_profile"), optimized_path=optimized)
        for _ in range(ctx.profile_warmup):
            self.infer()
        if self._binding is None:
            kineto = None
            for _ in range(iters):
                self.infer()
        else:
            kineto = self._profile_cuda(iters, work, ctx.device)
        start_ns = self._session.get_profiling_start_time_ns()
        events = ort_profile.load_profile(self._session.end_profiling())
        scopes = self._scopes(optimized)
        if kineto is None:
            ops, iteration_us, busy_us = ort_profile.cpu_op_table(events, scopes, last=iters)
            notes = {}
        else:
            table, base_ns = kineto
            ops, iteration_us, busy_us, misfit = ort_profile.cuda_op_table(events, scopes, table, base_ns, start_ns)
            notes = {"clock_misfit_us": round(misfit, 3)}
        self._record_providers(ops)
        trace_path = self._keep_trace(events, run_dir) if ctx.save_trace else None
        shutil.rmtree(work, ignore_errors=True)
        return ProfileResult(ops, iteration_us, busy_us, trace_path=trace_path, notes=notes)

    def _profile_cuda(self, iters: int, work: Path, device: str):
        """Run under torch.profiler (CUDA activity = CUPTI); returns (Kineto event table, base ns)."""
        from ngbench.trace.torch_profiler import profiled_iterations

        events = profiled_iterations(self.infer, iters, device, str(work / "kineto.json"), record_shapes=False,
                                     warmup=0)
        return events, events.attrs["base_time_ns"]

    def _scopes(self, optimized: str | None) -> dict:
        """Module scope of every node of the graph ORT ran (fused nodes resolved to their sources)."""
        import onnx

        from ngbench.flows.onnx_export import producers_of, resolve_scopes

        known = dict(self._exported.scopes)
        if not optimized or not os.path.exists(optimized):
            return known
        original = onnx.load(self._exported.path, load_external_data=False)
        graph = onnx.load(optimized, load_external_data=False).graph
        nodes = [(n.name, list(n.input), list(n.output)) for n in graph.node]
        return resolve_scopes(nodes, known, producers_of(original))

    def _record_providers(self, ops) -> None:
        from ngbench.trace.ort_profile import nodes_by_provider

        counts = nodes_by_provider(ops)
        first = ops[ops["iteration"] == ops["iteration"].min()]
        self._facts["nodes_by_provider"] = counts
        self._facts["memcpy_nodes"] = int(first["op"].str.startswith("Memcpy").sum())
        if self.provider != "cpu":
            self._facts["cpu_nodes"] = counts.get(EP_NAMES["cpu"], 0)   # Case Study 1: CPU fallbacks

    @staticmethod
    def _keep_trace(events: list, run_dir: Path) -> str:
        import json

        path = run_dir / "trace.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps({"traceEvents": events}))
        os.replace(tmp, path)
        return str(path)
