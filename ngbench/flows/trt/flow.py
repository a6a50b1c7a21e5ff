"""flow=trt: ONNX -> TensorRT 10 engine; per-layer times through IProfiler, layer sources through the inspector.

prepare(): export (shared ONNX cache), build with Builder + OnnxParser + BuilderConfig
(ProfilingVerbosity.DETAILED so the inspector lists each layer's source ONNX nodes), serialise the engine
next to the ONNX file (cached), create an IExecutionContext with tensors bound by `set_tensor_address`.
infer(): `execute_async_v3` on a torch CUDA stream; synchronize() waits for that stream. profiler(): an
`IProfiler` collects `report_layer_time` per iteration; ngbench.trace.trt_profile turns that and the
inspector JSON into rows.
Precision: fp32 (default), fp16 (BuilderFlag.FP16), bf16 (BuilderFlag.BF16); int8 is refused (it needs a
calibrator or a Q/DQ model, which ngbench does not make). NOT RUN on a machine with TensorRT yet; see
docs/flows-ort-trt.md.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from ngbench.errors import UserError
from ngbench.flows.base import RunContext
from ngbench.flows.onnx.flow import OnnxFlow
from ngbench.flows.trt.config import TrtConfig
from ngbench.output import atomic_write_bytes
from ngbench.trace.reconstruct import Costs
from ngbench.trace.result import ProfileResult


def _layer_profiler(trt):
    """An IProfiler that keeps {layer name: ms} per execution (TensorRT calls it once per layer)."""

    class LayerTimes(trt.IProfiler):
        def __init__(self):
            trt.IProfiler.__init__(self)
            self.iterations: list[dict[str, float]] = []

        def start(self) -> None:
            self.iterations.append({})

        def report_layer_time(self, layer_name: str, ms: float) -> None:
            if not self.iterations:
                self.iterations.append({})
            current = self.iterations[-1]
            current[layer_name] = current.get(layer_name, 0.0) + ms

    return LayerTimes()


class TrtFlow(OnnxFlow):
    """A TensorRT engine built from the shared ONNX export."""

    record_kinds = ()       # IProfiler times layers on the device; there is no host record to price
    cfg: TrtConfig

    def __init__(self, ctx: RunContext, cfg: TrtConfig):
        super().__init__(ctx, cfg)
        self._engine = self._context = self._stream = None
        self._tensors: dict = {}
        self._layers_json: dict = {}

    # ------------------------------------------------------------------------------- prepare
    def prepare(self, bundle) -> None:
        """Export to ONNX (cached), build or load the engine, bind the inputs and outputs."""
        import tensorrt as trt
        import torch

        ctx = self.ctx
        self.export(bundle)
        self._facts.update(tensorrt_version=trt.__version__, precision_flags=ctx.precision)
        logger = trt.Logger(trt.Logger.WARNING)
        plan = self._engine_file(trt, ctx)
        if not plan.exists():
            start = time.perf_counter()
            self._build(trt, logger, ctx.precision, plan)
            self._facts["engine_build_s"] = round(time.perf_counter() - start, 3)
        self._facts["engine_path"] = str(plan)
        self._engine = trt.Runtime(logger).deserialize_cuda_engine(plan.read_bytes())
        self._context = self._engine.create_execution_context()
        self._stream = torch.cuda.Stream(device=ctx.device)
        self._bind(trt, self.inputs, ctx.device)
        self._layers_json = self._inspect(trt)

    def _engine_file(self, trt, ctx: RunContext) -> Path:
        import torch

        gpu = torch.cuda.get_device_name(ctx.device)
        key = hashlib.sha256(f"{trt.__version__}|{gpu}|{ctx.precision}|{self.cfg.workspace_gb}".encode()).hexdigest()
        return Path(self.exported.path).with_name(f"engine-{ctx.precision}-{key[:12]}.plan")

    def _build(self, trt, logger, precision: str, plan: Path) -> None:
        """Builder + OnnxParser + BuilderConfig -> serialized engine, written atomically to `plan`."""
        builder = trt.Builder(logger)
        network = builder.create_network(0)              # TensorRT 10: networks are explicit-batch
        parser = trt.OnnxParser(network, logger)
        if not parser.parse_from_file(self.exported.path):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise UserError(f"TensorRT could not parse {self.exported.path}: {errors[:300]}")
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(self.cfg.workspace_gb * (1 << 30)))
        config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
        if precision == "fp16":
            config.set_flag(trt.BuilderFlag.FP16)
        elif precision == "bf16":
            config.set_flag(trt.BuilderFlag.BF16)
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise UserError(f"TensorRT could not build an engine from {self.exported.path} (see its log above)")
        atomic_write_bytes(plan, lambda tmp: Path(tmp).write_bytes(memoryview(serialized)))

    def _bind(self, trt, inputs: dict, device: str) -> None:
        """set_input_shape + set_tensor_address for every I/O tensor; outputs are torch tensors."""
        import torch

        dtypes = {trt.float32: torch.float32, trt.float16: torch.float16, trt.bfloat16: torch.bfloat16,
                  trt.int32: torch.int32, trt.int64: torch.int64, trt.bool: torch.bool,
                  trt.int8: torch.int8, trt.uint8: torch.uint8}
        for i in range(self._engine.num_io_tensors):
            name = self._engine.get_tensor_name(i)
            if self._engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
                tensor = inputs[name].contiguous()
                self._context.set_input_shape(name, tuple(tensor.shape))
                self._tensors[name] = tensor
        for i in range(self._engine.num_io_tensors):
            name = self._engine.get_tensor_name(i)
            if name not in self._tensors:
                shape = tuple(self._context.get_tensor_shape(name))
                dtype = dtypes[self._engine.get_tensor_dtype(name)]
                self._tensors[name] = torch.empty(shape, dtype=dtype, device=device)
            self._context.set_tensor_address(name, self._tensors[name].data_ptr())

    def _inspect(self, trt) -> dict:
        inspector = self._engine.create_engine_inspector()
        inspector.execution_context = self._context
        return json.loads(inspector.get_engine_information(trt.LayerInformationFormat.JSON))

    # ------------------------------------------------------------------------------- run
    def infer(self) -> Any:
        """One execute_async_v3 on this flow's CUDA stream (the timer synchronises)."""
        if not self._context.execute_async_v3(self._stream.cuda_stream):
            raise RuntimeError("TensorRT execute_async_v3 failed")
        return self._tensors

    def synchronize(self) -> None:
        """TensorRT enqueues on its own stream: wait for that one."""
        self._stream.synchronize()

    def profiler(self) -> TrtProfiler:
        return TrtProfiler(self)

    def layers(self):
        from ngbench.trace.trt_profile import parse_layers

        order = {name: i for i, name in enumerate(self.exported.op_types)}
        return parse_layers(self._layers_json, order)


class TrtProfiler:
    """An IProfiler on the execution context; per-layer times of each marked execution."""

    def __init__(self, flow: TrtFlow):
        import tensorrt as trt

        self.flow = flow
        self.layer_times = _layer_profiler(trt)
        self.marked: list[dict[str, float]] = []
        self.latency_us: list[float] = []

    def __enter__(self):
        self.flow._context.profiler = self.layer_times
        return self

    def __exit__(self, *exc_info):
        self.flow._context.profiler = None
        return False

    def block(self, iters: int) -> None:
        for _ in range(self.flow.ctx.profile_warmup):
            self.layer_times.start()
            self.flow.infer()
            self.flow.synchronize()
        for _ in range(iters):
            self.layer_times.start()
            start = time.perf_counter()
            self.flow.infer()
            self.flow.synchronize()
            self.latency_us.append((time.perf_counter() - start) * 1e6)
            self.marked.append(self.layer_times.iterations[-1])

    def result(self, costs: Costs) -> ProfileResult:
        from ngbench.trace.trt_profile import layer_events, layer_result

        flow = self.flow
        layers = flow.layers()
        ops, iteration_us, busy_us = layer_events(layers, self.marked, flow.exported.op_types, flow.exported.scopes,
                                                  self.latency_us)
        flow._facts["layers"] = len(layers)
        flow._facts["layer_types"] = _count(layer.layer_type for layer in layers)
        if flow.ctx.save_trace:
            path = Path(flow.ctx.run_dir) / "trt_layers.json"
            atomic_write_bytes(path, lambda tmp: Path(tmp).write_text(json.dumps(flow._layers_json)))
        result = layer_result(ops, iteration_us, busy_us)
        result.notes["layer_info"] = "engine inspector JSON (ProfilingVerbosity.DETAILED)"
        return result


def _count(values) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts
