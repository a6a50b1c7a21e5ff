"""What the ONNX flows' configs share (flow=ort, flow=trt): the export's opset and cache."""

from __future__ import annotations

from dataclasses import dataclass

from ngbench.flows.config import FlowConfig


@dataclass
class OnnxConfig(FlowConfig):
    opset: int = 18              # the dynamo exporter writes 18+ natively; lower ones are converted when possible
    cache_dir: str = "outputs/onnx_cache"
