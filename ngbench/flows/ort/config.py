"""flow=ort's config: the execution provider and graph optimisation level, and which combinations ONNX Runtime
can run."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ngbench.config import Choice
from ngbench.flows.onnx.config import OnnxConfig

if TYPE_CHECKING:
    from ngbench.flows.base import RunContext

EP_NAMES = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider",
            "tensorrt": "TensorrtExecutionProvider"}


class OrtProvider(Choice):
    auto = "auto"               # cuda on a GPU platform, else cpu
    cpu = "cpu"
    cuda = "cuda"
    tensorrt = "tensorrt"


class GraphOptimization(Choice):
    disable = "disable"
    basic = "basic"
    extended = "extended"
    all = "all"


@dataclass
class OrtConfig(OnnxConfig):
    _target_: str = "ngbench.flows.ort.flow.OrtFlow"
    provider: OrtProvider = OrtProvider.auto
    graph_optimization: GraphOptimization = GraphOptimization.all
    # Return each session's unused arena memory to the device after every run (ONNX Runtime's run option
    # memory.enable_memory_arena_shrinkage): the clean and the profiled session then never hold their activations
    # at once. Before share_weights, each of a run's two sessions held its own copy of the weights, and
    # Llama-2-7B fp32 at batch 4 ran out of an 80 GB GPU without this. It costs time inside every run, clean ones
    # included: the activations are freed at its end and allocated again by the next. At Llama-2 batch 4 and 8 on
    # the H100, the [idle] row (run time outside any node) was 19.5-19.6% of the rebuilt run, against 0.2-0.5% at
    # batch 1 and 2 without it.
    arena_shrinkage: bool = False
    # Give both sessions one copy of the weights on the CUDA provider: every floating-point initializer of two or
    # more dimensions is loaded once onto the GPU and handed to each session with SessionOptions.add_initializer,
    # which ONNX Runtime uses in place when it is on the device the session planned for it. Without it, Llama-2-7B
    # fp32 holds 2 x 27 GB of weights. Not done on the CPU provider (ONNX Runtime pre-packs MatMul weights per
    # session there, so the saving is small), under TensorRT, nor for +quant=int8 (its MatMulInteger weights sit on
    # the CPU provider).
    share_weights: bool = True
    # Export with a symbolic batch axis (every input's first dimension): one export, cached once, serves every
    # batch size, as in the seed artifact, whose optimum export makes the batch and sequence axes symbolic. The
    # paper sweeps turn it on (sweeps/paper/flow/ort.yaml); a single run keeps the fixed-shape export, whose graph
    # ONNX Runtime can specialise to the shapes (constant-folded Reshape targets, say).
    dynamic_batch: bool = False

    def resolved_provider(self, ctx: RunContext) -> str:
        """`auto` follows the platform: the CUDA provider on a GPU, the CPU provider otherwise."""
        if self.provider == OrtProvider.auto:
            return "cuda" if ctx.is_cuda else "cpu"
        return str(self.provider)

    def check(self, ctx: RunContext) -> str | None:
        provider = self.resolved_provider(ctx)
        quant = ctx.quant.name if ctx.quant else None
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
        return missing_provider(provider)


def missing_provider(provider: str) -> str | None:
    """Why the execution provider cannot be used with the installed onnxruntime (None when it can)."""
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
