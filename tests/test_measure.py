"""Memory and energy trackers over the devices a model is spread over (platform.devices)."""

import sys
import types

import pytest
import torch

from ngbench.measure.energy import EnergyTracker
from ngbench.measure.memory import MemoryTracker
from ngbench.platform import model_devices


def test_model_devices_are_platform_devices_or_the_one_device():
    assert model_devices({"devices": ["cuda:0", "cuda:1", "cuda:0"]}, "cuda:0") == ["cuda:0", "cuda:1"]
    assert model_devices({"devices": None}, "cuda:0") == ["cuda:0"]
    assert model_devices({"devices": ["cpu", "cpu"]}, "cpu") == ["cpu"]


def test_memory_peak_is_the_sum_over_the_gpus(monkeypatch):
    peaks = {"cuda:0": 40 * 2**30, "cuda:1": 30 * 2**30}
    reset = []
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", reset.append)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", peaks.__getitem__)
    with MemoryTracker(["cuda:0", "cuda:1"]) as memory:
        pass
    assert reset == ["cuda:0", "cuda:1"]
    assert memory.by_device == peaks and memory.peak_bytes == 70 * 2**30
    assert memory.kind == "cuda_max_allocated"


def test_memory_on_the_cpu_is_the_process_rss():
    with MemoryTracker(["cpu", "cpu"]) as memory:
        pass
    assert memory.kind == "process_max_rss" and memory.peak_bytes > 0 and memory.by_device == {}


def test_energy_is_the_sum_over_the_gpus(monkeypatch):
    counters = {0: iter([1_000, 4_000]), 1: iter([10_000, 12_500])}     # millijoules, before and after
    fake = types.SimpleNamespace(nvmlInit=lambda: None, nvmlDeviceGetHandleByIndex=lambda i: i,
                                 nvmlDeviceGetTotalEnergyConsumption=lambda h: next(counters[h]))
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    with EnergyTracker(["cuda:0", "cuda:1"]) as energy:
        pass
    assert energy.joules == pytest.approx(5.5) and energy.note == "sum over cuda:0, cuda:1"


def test_energy_on_the_cpu_is_not_measured():
    with EnergyTracker("cpu") as energy:
        pass
    assert energy.joules is None and "NVIDIA GPUs only" in energy.note
