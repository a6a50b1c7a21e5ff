"""Clean timing: inferences with no profiler attached.

On CUDA each inference is bracketed by CUDA events and synchronised; on the CPU a monotonic clock is read.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def synchronizer(device: str) -> Callable[[], None]:
    """A function that waits for the device to finish its queued work (a no-op on the CPU)."""
    if device.startswith("cuda"):
        import torch

        return torch.cuda.synchronize
    return lambda: None


def time_inferences(infer: Callable[[], object], iters: int, device: str) -> list[float]:
    """Latency of `iters` inferences in microseconds."""
    if device.startswith("cuda"):
        import torch

        latencies = []
        for _ in range(iters):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            infer()
            end.record()
            end.synchronize()
            latencies.append(start.elapsed_time(end) * 1000.0)
        return latencies
    latencies = []
    for _ in range(iters):
        begin = time.perf_counter_ns()
        infer()
        latencies.append((time.perf_counter_ns() - begin) / 1000.0)
    return latencies


def latency_stats(latencies_us: list[float]) -> dict:
    """Median, p10, p90, mean and coefficient of variation (ms), as users quote them."""
    import numpy as np

    values = np.asarray(latencies_us, dtype=float) / 1000.0
    mean = float(values.mean())
    return {
        "median_ms": float(np.median(values)),
        "p10_ms": float(np.percentile(values, 10)),
        "p90_ms": float(np.percentile(values, 90)),
        "mean_ms": mean,
        "cv": float(statistics.pstdev(values.tolist()) / mean) if mean > 0 else 0.0,
        "iters": int(len(values)),
    }
