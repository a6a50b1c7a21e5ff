"""flow=trt: ONNX -> TensorRT engine (written against TensorRT 10's API; not run here, see the README).
The Flow class is in flow.py, its config dataclass in config.py."""
