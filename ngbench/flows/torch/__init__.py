"""flow=torch: PyTorch eager inference (int8 through LLM.int8() on CUDA or dynamic int8 on the CPU).
The Flow class is in flow.py, its config dataclass in config.py."""
