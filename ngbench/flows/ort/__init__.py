"""flow=ort: ONNX export + ONNX Runtime (CPU, CUDA or TensorRT execution provider)."""

from ngbench.flows.ort.flow import OrtFlow

__all__ = ["OrtFlow"]
