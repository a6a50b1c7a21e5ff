"""What the ONNX flows (ort, trt) share: the base flow (flow.py: cached export, its facts, inputs by ONNX name,
the runtime's device memory), its config (config.py: opset, cache) and the exporter (export.py)."""
