"""GPU energy through NVML's total-energy counter (millijoules since driver load), summed over the GPUs
the model is spread over."""

from __future__ import annotations

import time

POWER_LIMIT_SLACK = 1.05   # NVML's counter and limit may disagree by a few percent over short windows


class EnergyTracker:
    """Context manager: energy the GPUs used inside the block; `joules` is None when NVML can't tell."""

    def __init__(self, devices: str | list[str]):
        self.devices = [devices] if isinstance(devices, str) else list(devices)
        self.gpus = [d for d in self.devices if d.startswith("cuda")]
        self.joules: float | None = None
        self.seconds = 0.0             # wall time between the two counter reads
        self.power_limit_w: float | None = None   # the GPUs' enforced power limits, summed (a plausibility bound)
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
            self.power_limit_w = _power_limit_w(pynvml, self._handles)
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


def _power_limit_w(pynvml, handles) -> float | None:
    """Sum of the GPUs' enforced power limits (NVML reports milliwatts); None when NVML cannot tell."""
    try:
        return sum(pynvml.nvmlDeviceGetEnforcedPowerLimit(h) for h in handles) / 1000.0
    except Exception:  # noqa: BLE001 - an older driver or a GPU without the query: no bound, no warning
        return None


def implausible_power(avg_power_w: float | None, power_limit_w: float | None) -> str | None:
    """A warning when the measured average power is above what the GPUs may draw: the energy window then held
    more than the inferences (or the counter misread), and the energy is not to be cited."""
    if avg_power_w is None or not power_limit_w or avg_power_w <= POWER_LIMIT_SLACK * power_limit_w:
        return None
    return (f"energy: the average power read {avg_power_w:.0f} W, above the GPUs' {power_limit_w:.0f} W limit: "
            "the energy per inference is not to be cited")
