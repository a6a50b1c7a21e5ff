"""flow=trt's config: the engine's workspace, and where TensorRT can run."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ngbench.flows.onnx.config import OnnxConfig

if TYPE_CHECKING:
    from ngbench.flows.base import RunContext

NEEDS_TRT = "flow=trt needs TensorRT: pip install tensorrt (NVIDIA GPUs with CUDA only)"


def has_tensorrt() -> bool:
    return importlib.util.find_spec("tensorrt") is not None


@dataclass
class TrtConfig(OnnxConfig):
    _target_: str = "ngbench.flows.trt.flow.TrtFlow"
    workspace_gb: float = 8.0    # BuilderConfig WORKSPACE memory pool limit

    def check(self, ctx: RunContext) -> str | None:
        if not has_tensorrt():
            return NEEDS_TRT if ctx.is_cuda else f"{NEEDS_TRT}, and a GPU platform (platform=cuda)"
        if not ctx.is_cuda:
            return "flow=trt runs on NVIDIA GPUs: use platform=cuda"
        if ctx.quant:
            return ("+quant on flow=trt is not supported (TensorRT int8 needs a calibrator or a Q/DQ model): "
                    "use precision=fp16, or flow=ort +quant=int8")
        return None
