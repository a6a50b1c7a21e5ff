"""Clean timing: inferences with no profiler attached, and the statistics users quote.

A block runs until it has both `min_iters` inferences and `min_time_s` seconds (MLPerf-style minimum
duration). On CUDA each inference is bracketed by CUDA events on the current stream (flows whose runtime
uses a stream of its own are timed on the host clock around infer() + synchronize()); on the CPU a
monotonic clock is read. The garbage collector is off inside a block, so a collection does not land in
one inference.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from contextlib import contextmanager

MAX_BLOCK_ITERS = 100_000


@contextmanager
def gc_paused():
    """The cyclic garbage collector off inside the block (restored after), after one collection. Nested inside
    another gc_paused (the collector already off) it does nothing: the outer one has collected, and a second
    full collection would cost a traversal of every object for no garbage."""
    enabled = gc.isenabled()
    if enabled:
        gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def time_block(infer: Callable[[], object], synchronize: Callable[[], None], use_cuda_events: bool,
               min_iters: int, min_time_s: float = 0.0) -> list[float]:
    """Latency of each inference in microseconds, until both `min_iters` and `min_time_s` are reached."""
    latencies: list[float] = []
    with gc_paused():
        began = time.perf_counter()   # after the collection: a long one must not eat the block's min_time_s
        while len(latencies) < min_iters or (time.perf_counter() - began < min_time_s
                                             and len(latencies) < MAX_BLOCK_ITERS):
            latencies.append(_one(infer, synchronize, use_cuda_events))
    return latencies


def _one(infer, synchronize, use_cuda_events: bool) -> float:
    if use_cuda_events:
        import torch

        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        infer()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) * 1000.0
    begin = time.perf_counter_ns()
    infer()
    synchronize()
    return (time.perf_counter_ns() - begin) / 1000.0


def median_ci(values, confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free confidence interval of the median: order statistics at binomial ranks."""
    import numpy as np
    from scipy.stats import binom

    ordered = np.sort(np.asarray(values, dtype=float))
    n = len(ordered)
    if n == 0:
        return float("nan"), float("nan")
    tail = (1.0 - confidence) / 2.0
    lo = int(binom.ppf(tail, n, 0.5))                      # 0-based rank of the lower bound
    hi = int(binom.ppf(1.0 - tail, n, 0.5))
    return float(ordered[max(lo - 1, 0)]), float(ordered[min(hi, n - 1)])


def latency_stats(latencies_us) -> dict:
    """Median, p10, p90, mean, coefficient of variation and the median's 95% CI (ms), as users quote them."""
    import numpy as np

    values = np.asarray(latencies_us, dtype=float) / 1000.0
    mean = float(values.mean())
    return {
        "median_ms": float(np.median(values)),
        "p10_ms": float(np.percentile(values, 10)),
        "p90_ms": float(np.percentile(values, 90)),
        "mean_ms": mean,
        "cv": float(values.std() / mean) if mean > 0 else 0.0,
        "ci95_ms": list(median_ci(values)),
        "iters": int(len(values)),
    }


def host_state() -> dict:
    """What the host was doing: load averages, the CPUs this process may run on, their current clock."""
    import os

    state: dict = {}
    try:
        state["load_avg"] = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        pass
    try:
        cpus = sorted(os.sched_getaffinity(0))
        state["affinity"] = cpus
        freqs = []
        for cpu in cpus[:64]:
            path = f"/sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_cur_freq"
            if os.path.exists(path):
                with open(path) as handle:
                    freqs.append(int(handle.read().strip()) / 1000.0)
        if freqs:
            state["cpu_mhz"] = {"min": min(freqs), "max": max(freqs), "mean": round(sum(freqs) / len(freqs), 1)}
    except (AttributeError, OSError, ValueError):
        pass
    return state


def pin_cpus(cpus) -> list[int] | None:
    """Restrict this process to `cpus` (a list of CPU numbers) where the OS allows it; returns the new set."""
    import os

    if not cpus:
        return None
    try:
        os.sched_setaffinity(0, {int(c) for c in cpus})
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None
