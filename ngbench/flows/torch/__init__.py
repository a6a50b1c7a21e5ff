"""flow=torch: PyTorch eager inference (int8 through LLM.int8() on CUDA or dynamic int8 on the CPU)."""

from ngbench.flows.torch.flow import TorchFlow

__all__ = ["TorchFlow"]
