"""Peak memory: device memory on CUDA (allocator peak), resident set size of the process on the CPU."""

from __future__ import annotations

import resource
import sys


class MemoryTracker:
    """Context manager recording the peak memory in bytes inside the block (`peak_bytes`)."""

    def __init__(self, device: str):
        self.device = device
        self.peak_bytes: int | None = None
        self.kind = "cuda_max_allocated" if device.startswith("cuda") else "process_max_rss"

    def __enter__(self):
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.reset_peak_memory_stats(self.device)
        return self

    def __exit__(self, *exc_info):
        if self.device.startswith("cuda"):
            import torch

            self.peak_bytes = int(torch.cuda.max_memory_allocated(self.device))
        else:
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            self.peak_bytes = int(rss if sys.platform == "darwin" else rss * 1024)
        return False
