"""The device spec table (ngbench/hardware.yaml): peak FLOP/s per dtype and memory bandwidth of the GPUs
ngbench knows, looked up by the name PyTorch reports."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources


@cache
def spec_table() -> dict:
    import yaml

    return yaml.safe_load(resources.files("ngbench").joinpath("hardware.yaml").read_text())


def device_spec(gpu_name: str) -> dict | None:
    """The first spec whose `match` fits `gpu_name` (e.g. 'NVIDIA H100 80GB HBM3'); None when none does."""
    if not gpu_name:
        return None
    return next((dict(d) for d in spec_table()["devices"] if re.search(d["match"], gpu_name)), None)


def peak_name(precision: str, quant: str = "") -> str:
    """Which peak a run's operators are compared with: its precision's (int8 when quantized to int8)."""
    return spec_table()["precision_peak"].get(quant or precision, "fp32")
