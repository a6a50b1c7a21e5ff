"""Deployment flows behind the interface in flows/base.py: one package each (flows/<name>/flow.py with its
config dataclass in flows/<name>/config.py, a FlowConfig), plus the ONNX base that ort and trt share."""
