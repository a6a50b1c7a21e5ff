"""GPU energy through NVML's total-energy counter (millijoules since driver load)."""

from __future__ import annotations


class EnergyTracker:
    """Context manager: energy the GPU used inside the block; `joules` is None when NVML can't tell."""

    def __init__(self, device: str):
        self.device = device
        self.joules: float | None = None
        self.note = ""
        self._handle = None
        self._start_mj = None

    def __enter__(self):
        if not self.device.startswith("cuda"):
            self.note = "energy is measured on NVIDIA GPUs only"
            return self
        try:
            import pynvml

            pynvml.nvmlInit()
            index = int(self.device.split(":")[1]) if ":" in self.device else 0
            self._handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            self._start_mj = pynvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)
        except Exception as exc:  # NVML missing, or the counter unsupported on this GPU
            self.note = f"NVML energy counter unavailable: {exc}"
            self._handle = None
        return self

    def __exit__(self, *exc_info):
        if self._handle is not None:
            import pynvml

            end_mj = pynvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)
            self.joules = (end_mj - self._start_mj) / 1000.0
        return False
