"""GPU energy through NVML's total-energy counter (millijoules since driver load), summed over the GPUs
the model is spread over."""

from __future__ import annotations

import time


class EnergyTracker:
    """Context manager: energy the GPUs used inside the block; `joules` is None when NVML can't tell."""

    def __init__(self, devices: str | list[str]):
        self.devices = [devices] if isinstance(devices, str) else list(devices)
        self.gpus = [d for d in self.devices if d.startswith("cuda")]
        self.joules: float | None = None
        self.seconds = 0.0             # wall time between the two counter reads
        self.note = ""
        self._handles: list = []
        self._start_mj: list[int] = []

    def __enter__(self):
        if not self.gpus:
            self.note = "energy is measured on NVIDIA GPUs only"
            return self
        try:
            import pynvml

            pynvml.nvmlInit()
            indices = [int(d.split(":")[1]) if ":" in d else 0 for d in self.gpus]
            self._handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in indices]
            self._start_mj = [pynvml.nvmlDeviceGetTotalEnergyConsumption(h) for h in self._handles]
            self._began = time.perf_counter()
        except Exception as exc:  # NVML missing, or the counter unsupported on this GPU
            self.note = f"NVML energy counter unavailable: {exc}"
            self._handles = []
        if len(self.gpus) > 1 and self._handles:
            self.note = f"sum over {', '.join(self.gpus)}"
        return self

    def __exit__(self, *exc_info):
        if self._handles:
            import pynvml

            end_mj = [pynvml.nvmlDeviceGetTotalEnergyConsumption(h) for h in self._handles]
            self.seconds = time.perf_counter() - self._began
            self.joules = sum(e - s for e, s in zip(end_mj, self._start_mj, strict=True)) / 1000.0
        return False
