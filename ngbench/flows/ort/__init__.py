"""flow=ort: ONNX export + ONNX Runtime (CPU, CUDA or TensorRT execution provider).
The Flow class is in flow.py, its config dataclass in config.py."""
