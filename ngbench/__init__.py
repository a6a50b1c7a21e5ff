"""ngbench: per-operator GEMM / non-GEMM latency breakdowns of ML inference across deployment flows.

Importing the package loads no torch, onnxruntime or tensorrt: heavy libraries are imported by the code
that needs them.
"""

__version__ = "0.1.0"
