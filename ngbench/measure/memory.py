"""Peak memory: device memory on CUDA (allocator peak, summed over the GPUs the model is spread over),
resident set size of the process on the CPU."""

from __future__ import annotations

import resource
import sys


class MemoryTracker:
    """Context manager recording the peak memory in bytes inside the block (`peak_bytes`; with several GPUs
    the sum of their peaks, each in `by_device`)."""

    def __init__(self, devices: str | list[str]):
        self.devices = [devices] if isinstance(devices, str) else list(devices)
        self.gpus = [d for d in self.devices if d.startswith("cuda")]
        self.peak_bytes: int | None = None
        self.by_device: dict[str, int] = {}
        self.kind = "cuda_max_allocated" if self.gpus else "process_max_rss"

    def __enter__(self):
        if self.gpus:
            import torch

            for device in self.gpus:
                torch.cuda.reset_peak_memory_stats(device)
        return self

    def __exit__(self, *exc_info):
        if self.gpus:
            import torch

            self.by_device = {device: int(torch.cuda.max_memory_allocated(device)) for device in self.gpus}
            self.peak_bytes = sum(self.by_device.values())
        else:
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            self.peak_bytes = int(rss if sys.platform == "darwin" else rss * 1024)
        return False
