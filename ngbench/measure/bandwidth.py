"""Measured memory bandwidth, the roof the memory-bound operators are compared with; cached per host.

- CUDA: a large device-to-device copy (`dst.copy_(src)`, 2 x 512 MiB by default) timed with CUDA events;
  bytes moved = read + write.
- CPU: a STREAM-like triad a = b + s*c over arrays much larger than the last-level cache, as one fused
  `torch.add(b, c, alpha=s, out=a)` on the run's torch threads (the threads the operators use); bytes as
  STREAM counts them (two arrays read, one written; no write-allocate traffic).
Each is the best of a few repetitions (STREAM's convention: the fastest pass is the least disturbed one).
The result is cached like the profiler calibration (`calibration.dir`, keyed by host, device and library
versions; `calibration.mode=force` measures again, `off` skips the probe).
"""

from __future__ import annotations

import json
import time

COPY_BYTES = 512 * 2**20
TRIAD_ELEMENTS = 2**25          # 3 float64 arrays of 256 MiB
REPEATS = 5


def device_copy_gbs(device: str, nbytes: int = COPY_BYTES, repeats: int = REPEATS) -> float:
    """Device-to-device copy bandwidth in GB/s (read + write), timed with CUDA events."""
    import torch

    src = torch.empty(nbytes, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    torch.cuda.synchronize(device)
    best_s = float("inf")
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        dst.copy_(src)
        end.record()
        end.synchronize()
        best_s = min(best_s, start.elapsed_time(end) / 1000.0)
    del src, dst
    torch.cuda.empty_cache()
    return 2 * nbytes / best_s / 1e9


def host_triad_gbs(elements: int = TRIAD_ELEMENTS, repeats: int = REPEATS) -> float:
    """STREAM triad bandwidth of the host in GB/s (24 bytes per float64 element)."""
    import torch

    b = torch.ones(elements, dtype=torch.float64)
    c = torch.full((elements,), 2.0, dtype=torch.float64)
    a = torch.empty_like(b)
    torch.add(b, c, alpha=3.0, out=a)
    best_s = float("inf")
    for _ in range(repeats):
        began = time.perf_counter()
        torch.add(b, c, alpha=3.0, out=a)
        best_s = min(best_s, time.perf_counter() - began)
    if float(a[-1]) != 7.0:
        raise RuntimeError("the triad probe computed a wrong value")
    return 3 * 8 * elements / best_s / 1e9


def bandwidth_for(mode: str, directory: str, device: str) -> dict:
    """The measured bandwidth of `device` for the summary's environment: from the cache or measured now."""
    import torch

    from ngbench.measure.calibration import cache_file, host_key
    from ngbench.output import write_json

    if mode == "off":   # calibration.mode is a typed choice (ngbench.config.CalibrationMode): cached | force | off
        return {"mode": mode, "gbs": None}
    cuda = device.startswith("cuda")
    key = {**host_key(device), **({} if cuda else {"threads": torch.get_num_threads()})}
    path = cache_file(directory, key, prefix="bandwidth")
    if mode == "cached" and path.exists():
        return {**json.loads(path.read_text()), "mode": mode, "file": str(path), "measured_now": False}
    measured = {"key": key, "probe": "device copy (CUDA events)" if cuda else "host triad (torch.add)",
                "gbs": device_copy_gbs(device) if cuda else host_triad_gbs(),
                "threads": None if cuda else torch.get_num_threads(),
                "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
    write_json(path, measured)
    return {**measured, "mode": mode, "file": str(path), "measured_now": True}

