"""Peak memory over a block of inferences, read where the memory really is (a flow picks its probe:
ngbench.flows.base.Flow.memory_probe):
- `TorchAllocatorPeak`: torch's caching allocator peak, for flows whose memory torch owns;
- `DeviceUsedPeak`: the device's used memory (cudaMemGetInfo) above a baseline, for runtimes with their
  own allocator (ONNX Runtime's arena, a TensorRT engine) that torch's allocator cannot see;
- `CpuPeakRss`: the process's peak resident set inside the block. The kernel's high-water mark (VmHWM) is
  reset at the start of the block (/proc/self/clear_refs), so a cell of a sweep does not inherit the peak
  of the cells before it in the same process; where that reset is not allowed, a thread samples the RSS.
With several GPUs, `peak_bytes` is the sum of their peaks, each in `by_device`.
"""

from __future__ import annotations

import os
import re
import threading
from typing import Protocol

CLEAR_REFS = "/proc/self/clear_refs"
STATUS = "/proc/self/status"
SAMPLE_EVERY_S = 0.002


class MemoryProbe(Protocol):
    """A context manager around a block; after it, `peak_bytes` (None when unknown), `by_device` and `kind`."""

    kind: str
    peak_bytes: int | None
    by_device: dict[str, int]

    def __enter__(self) -> MemoryProbe: ...

    def __exit__(self, *exc_info) -> bool: ...


def memory_probe(devices: str | list[str], device_used_baseline: dict[str, int] | None = None) -> MemoryProbe:
    """The probe for `devices`: the GPUs among them if any (torch's allocator, or the device's used memory
    above `device_used_baseline` when that is given), else the process on the CPU."""
    devices = [devices] if isinstance(devices, str) else list(devices)
    gpus = [d for d in devices if d.startswith("cuda")]
    if not gpus:
        return CpuPeakRss()
    if device_used_baseline is not None:
        return DeviceUsedPeak(gpus, device_used_baseline)
    return TorchAllocatorPeak(gpus)


class _Probe:
    kind = ""

    def __init__(self) -> None:
        self.peak_bytes: int | None = None
        self.by_device: dict[str, int] = {}

    def _finish(self, by_device: dict[str, int]) -> None:
        self.by_device = by_device
        self.peak_bytes = sum(by_device.values())


class TorchAllocatorPeak(_Probe):
    kind = "cuda_max_allocated"

    def __init__(self, gpus: list[str]):
        super().__init__()
        self.gpus = gpus

    def __enter__(self):
        import torch

        for device in self.gpus:
            torch.cuda.reset_peak_memory_stats(device)
        return self

    def __exit__(self, *exc_info):
        import torch

        self._finish({device: int(torch.cuda.max_memory_allocated(device)) for device in self.gpus})
        return False


def device_used_bytes(gpus: list[str]) -> dict[str, int]:
    """Memory in use on each GPU, by every allocator and process (cudaMemGetInfo: total - free)."""
    import torch

    used = {}
    for device in gpus:
        free, total = torch.cuda.mem_get_info(device)
        used[device] = int(total - free)
    return used


class DeviceUsedPeak(_Probe):
    """Used device memory at the start and the end of the block (an arena or an engine grows and stays, so the
    larger of the two is its peak), minus the baseline. Device-wide: another process on the GPU counts too."""

    kind = "cuda_device_used_delta"

    def __init__(self, gpus: list[str], baseline: dict[str, int]):
        super().__init__()
        self.gpus = gpus
        self.baseline = baseline
        self._start: dict[str, int] = {}

    def __enter__(self):
        self._start = device_used_bytes(self.gpus)
        return self

    def __exit__(self, *exc_info):
        end = device_used_bytes(self.gpus)
        self._finish({d: max(0, max(self._start[d], end[d]) - self.baseline.get(d, 0)) for d in self.gpus})
        return False


def _status_kib(field: str) -> int | None:
    try:
        with open(STATUS) as handle:
            match = re.search(rf"^{field}:\s+(\d+) kB", handle.read(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) if match else None


def reset_peak_rss() -> bool:
    """Reset this process's resident-set high-water mark (Linux 4.0+: '5' > /proc/self/clear_refs); whether
    that worked (the mark then equals the current RSS)."""
    try:
        with open(CLEAR_REFS, "w") as handle:
            handle.write("5")
    except OSError:
        return False
    hwm, rss = _status_kib("VmHWM"), _status_kib("VmRSS")
    return hwm is not None and rss is not None and hwm <= rss + 1024  # a reset mark sits at the current RSS


def current_rss_bytes() -> int | None:
    """Resident set size of this process now."""
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def peak_rss_bytes() -> int | None:
    """This process's resident-set high-water mark so far (VmHWM; since the last reset_peak_rss)."""
    hwm = _status_kib("VmHWM")
    return hwm * 1024 if hwm is not None else None


class CpuPeakRss(_Probe):
    """The process's peak resident set inside the block: VmHWM after a reset, or the peak of RSS samples
    every 2 ms (kind says which)."""

    kind = "process_peak_rss"

    def __init__(self):
        super().__init__()
        self._sampler: threading.Thread | None = None
        self._stop = threading.Event()
        self._sampled = 0

    def __enter__(self):
        if not reset_peak_rss():
            self.kind = "process_rss_sampled"
            self._sampled = current_rss_bytes() or 0
            self._sampler = threading.Thread(target=self._sample, name="ngbench-rss", daemon=True)
            self._sampler.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY_S):
            self._sampled = max(self._sampled, current_rss_bytes() or 0)

    def __exit__(self, *exc_info):
        if self._sampler is not None:
            self._stop.set()
            self._sampler.join()
            peak = max(self._sampled, current_rss_bytes() or 0)
        else:
            hwm = _status_kib("VmHWM")
            peak = hwm * 1024 if hwm is not None else None
        self.by_device = {}
        self.peak_bytes = peak or None
        return False
