"""flow=trt: ONNX -> TensorRT engine (written against TensorRT 10's API; not run here, see the README)."""

from ngbench.flows.trt.flow import TrtFlow

__all__ = ["TrtFlow"]
