"""Memory probes and the energy tracker over the devices a model is spread over (platform.devices)."""

import sys
import time
import types

import pytest
import torch

from ngbench.measure.energy import EnergyTracker
from ngbench.measure.memory import memory_probe
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
    with memory_probe(["cuda:0", "cuda:1"]) as memory:
        pass
    assert reset == ["cuda:0", "cuda:1"]
    assert memory.by_device == peaks and memory.peak_bytes == 70 * 2**30
    assert memory.kind == "cuda_max_allocated"


def test_a_runtime_of_its_own_is_read_as_device_memory_above_its_baseline(monkeypatch):
    """ONNX Runtime's arena or a TensorRT engine is invisible to torch's allocator: the device's used memory
    (cudaMemGetInfo) counts, above what was in use before the runtime (larger of block start and end)."""
    total = 80 * 2**30
    used = {"cuda:0": iter([9 * 2**30, 11 * 2**30]), "cuda:1": iter([6 * 2**30, 5 * 2**30])}
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (total - next(used[device]), total))
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device: pytest.fail("torch's allocator read"))
    with memory_probe(["cuda:0", "cuda:1"], device_used_baseline={"cuda:0": 2 * 2**30, "cuda:1": 1 * 2**30}) as memory:
        pass
    assert memory.kind == "cuda_device_used_delta"
    assert memory.by_device == {"cuda:0": 9 * 2**30, "cuda:1": 5 * 2**30} and memory.peak_bytes == 14 * 2**30


def test_each_flow_picks_where_its_memory_is(tmp_path, monkeypatch):
    from ngbench.flows.base import RunContext
    from ngbench.flows.ort.config import OrtConfig
    from ngbench.flows.ort.flow import OrtFlow
    from ngbench.flows.torch.config import TorchConfig
    from ngbench.flows.torch.flow import TorchFlow

    ctx = RunContext(device="cuda:0", precision="fp16", batch_size=1, quant=None, model_name="m", run_dir=str(tmp_path))
    assert TorchFlow(ctx, TorchConfig(name="torch")).memory_probe(["cuda:0"]).kind == "cuda_max_allocated"
    ort = OrtFlow(ctx, OrtConfig(name="ort"))
    ort.device_baseline = {"cuda:0": 2**30}
    assert ort.memory_probe(["cuda:0"]).kind == "cuda_device_used_delta"
    assert ort.memory_probe(["cpu"]).kind == TorchFlow(ctx, TorchConfig(name="torch")).memory_probe(["cpu"]).kind


def _touch(size: int) -> bytearray:
    block = bytearray(size)
    for i in range(0, size, 4096):
        block[i] = 1
    return block


@pytest.mark.parametrize("reset_allowed", [True, False])
@pytest.mark.slow
def test_cpu_peak_is_per_block_not_the_process_lifetime(reset_allowed, monkeypatch):
    """A cell of a sweep runs in the same process as the cells before it: its peak must not be theirs."""
    from ngbench.measure import memory as memory_mod

    if not reset_allowed:
        monkeypatch.setattr(memory_mod, "CLEAR_REFS", "/nonexistent/clear_refs")
    size = 300 * 2**20
    with memory_probe("cpu") as big:
        block = _touch(size)
        time.sleep(0.05)                     # the sampler, if it is used, sees it
        del block
    with memory_probe("cpu") as small:
        time.sleep(0.01)
    expected_kind = "process_peak_rss" if reset_allowed else "process_rss_sampled"
    assert big.kind == small.kind == expected_kind
    assert big.peak_bytes - small.peak_bytes > 0.8 * size
    assert small.peak_bytes <= memory_mod.current_rss_bytes() + 64 * 2**20


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


class FakeClock:
    """perf_counter that moves only when told: each inference takes `step_s`, a garbage collection `gc_s`."""

    def __init__(self, step_s: float, gc_s: float):
        self.now, self.step_s, self.gc_s = 0.0, step_s, gc_s

    def perf_counter(self) -> float:
        return self.now

    def perf_counter_ns(self) -> int:
        return int(self.now * 1e9)

    def infer(self) -> None:
        self.now += self.step_s

    def collect(self) -> int:
        self.now += self.gc_s
        return 0


def test_a_long_collection_does_not_eat_the_blocks_min_time(monkeypatch):
    """Before each block the collector runs; on the H100 after a profiled block it took longer than the block's
    0.2 s, and every block then stopped at min_iters (5 inferences, not 0.2 s of them). Fake clock: inferences of
    10 ms, a collection of 1 s, a block of min_iters 5 and min_time_s 0.2 -> 20 inferences of 10 ms."""
    from ngbench.measure import timing

    clock = FakeClock(step_s=0.010, gc_s=1.0)
    monkeypatch.setattr(timing, "time", types.SimpleNamespace(perf_counter=clock.perf_counter,
                                                              perf_counter_ns=clock.perf_counter_ns))
    monkeypatch.setattr(timing.gc, "collect", clock.collect)
    latencies = timing.time_block(clock.infer, lambda: None, False, 5, 0.2)
    assert len(latencies) == 20
    assert latencies == pytest.approx([10_000.0] * 20)


def test_energy_window_records_its_seconds_for_the_average_power(monkeypatch):
    """avg_power_w is joules over the window's own seconds (not the sum of inference latencies, which leaves out
    the host's time between inferences): 3 J over a 2 s window is 1.5 W."""
    from ngbench.measure import energy as energy_mod

    counters = iter([1_000, 4_000])
    fake = types.SimpleNamespace(nvmlInit=lambda: None, nvmlDeviceGetHandleByIndex=lambda i: i,
                                 nvmlDeviceGetTotalEnergyConsumption=lambda h: next(counters))
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    ticks = iter([10.0, 12.0])
    monkeypatch.setattr(energy_mod, "time", types.SimpleNamespace(perf_counter=lambda: next(ticks)))
    with EnergyTracker("cuda:0") as energy:
        pass
    assert energy.joules == pytest.approx(3.0) and energy.seconds == pytest.approx(2.0)


def test_energy_reads_the_gpus_power_limit_and_an_average_above_it_is_flagged(monkeypatch):
    """A 700 W H100: 1030 W on average (what this session's H100 data read, the garbage collection's idle time in
    the window) is flagged; 650 W is not; without a limit nothing is said."""
    from ngbench.measure.energy import implausible_power

    counters = iter([1_000, 4_000])
    fake = types.SimpleNamespace(nvmlInit=lambda: None, nvmlDeviceGetHandleByIndex=lambda i: i,
                                 nvmlDeviceGetTotalEnergyConsumption=lambda h: next(counters),
                                 nvmlDeviceGetEnforcedPowerLimit=lambda h: 700_000)
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    with EnergyTracker("cuda:0") as energy:
        pass
    assert energy.power_limit_w == pytest.approx(700.0)
    warning = implausible_power(1030.0, energy.power_limit_w)
    assert warning is not None and "1030 W, above the GPUs' 700 W limit" in warning
    assert implausible_power(650.0, 700.0) is None and implausible_power(1030.0, None) is None


def test_a_nested_gc_pause_collects_once_and_restores_the_collector(monkeypatch):
    """run._blocks pauses the collector around the memory and energy windows and time_block pauses it again
    inside: one full collection (before the windows), not two, and the collector is back on after."""
    import gc

    from ngbench.measure import timing

    collections = []
    monkeypatch.setattr(timing.gc, "collect", lambda: collections.append(1) or 0)
    assert gc.isenabled()
    with timing.gc_paused():
        with timing.gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert len(collections) == 1 and gc.isenabled()


SIX_BLOCKS = dict(iters=30, profile_iters=12, blocks=6, profile_warmup=2)   # the run defaults: 54 inferences


@pytest.mark.parametrize("inference_s, max_time_s, planned", [
    (0.5, 60.0, (30, 12, 6, 2, False)),        # 27 s: as configured
    (2.0, None, (30, 12, 6, 2, False)),        # no cap
    (None, 60.0, (30, 12, 6, 2, False)),       # no warm-up, no estimate
    # 30 affordable: 6 blocks of 1 clean + 1 unmarked + 1 profiled, the 12 left split 30:12 -> 9 and 3
    (2.0, 60.0, (15, 9, 6, 1, True)),
    # nothing affordable: the floors, 3 blocks of one of each
    (100.0, 60.0, (3, 3, 3, 1, True)),
])
def test_sampling_is_cut_to_max_time_down_to_its_floors(inference_s, max_time_s, planned):
    from ngbench.measure.timing import Sampling, plan_sampling

    got = plan_sampling(Sampling(**SIX_BLOCKS), inference_s, max_time_s)
    assert (got.iters, got.profile_iters, got.blocks, got.profile_warmup, got.capped) == planned
    if got.capped and got.blocks * 3 < max_time_s // inference_s:
        assert got.inferences == max_time_s // inference_s     # the time is used, not more


def test_sampling_never_adds_blocks_to_a_config_with_fewer():
    from ngbench.measure.timing import Sampling, plan_sampling

    got = plan_sampling(Sampling(iters=2, profile_iters=2, blocks=2, profile_warmup=1), 50.0, 10.0)
    assert (got.iters, got.profile_iters, got.blocks, got.profile_warmup) == (2, 2, 2, 1)


def test_warm_up_stops_early_only_when_inferences_are_slow(monkeypatch):
    from ngbench.measure import timing

    for step_s, max_time_s, expected in ((0.01, 60.0, 3), (10.0, 60.0, 2), (10.0, None, 3)):
        clock = iter(i * step_s for i in range(100))
        monkeypatch.setattr(timing.time, "perf_counter", lambda clock=clock: next(clock))
        assert timing.warm_up(lambda: None, lambda: None, 3, max_time_s) == pytest.approx([step_s] * expected)


def test_the_host_probe_is_the_median_and_mean_per_call_time_of_its_loops(monkeypatch):
    """Three loops of 4 calls on a fake clock taking 8, 20 and 12 µs: 2, 5 and 3 µs a call, median 3, mean 10/3."""
    import ngbench.measure.timing as timing

    ticks = iter([0, 8_000, 100_000, 120_000, 200_000, 212_000])
    monkeypatch.setattr(timing.time, "perf_counter_ns", lambda: next(ticks))
    assert timing.host_probe(calls=4, repeats=3) == {"host_probe_us": 3.0, "host_probe_mean_us": 3.3333}


def test_the_host_probe_measures_this_host():
    from ngbench.measure.timing import host_probe

    probe = host_probe(calls=20)
    assert 0.0 < probe["host_probe_us"] < 10_000.0 and 0.0 < probe["host_probe_mean_us"] < 10_000.0


@pytest.mark.parametrize("n,coverage", [(2, 0.5), (3, 0.75), (4, 0.875), (5, 0.9375), (6, 0.96875)])
def test_the_median_interval_of_few_values_is_their_range_and_says_its_confidence(n, coverage):
    """Below 6 values no pair of order statistics reaches 95%: median_ci is then their range, and
    median_ci_coverage its exact confidence (1 - 2 * 0.5^n), the same the report prints (format.with_range)."""
    from ngbench.measure.timing import RANGE_ONLY, median_ci, median_ci_coverage
    from ngbench.report.format import with_range

    values = [float(v) for v in range(10, 10 + n)][::-1]
    assert median_ci_coverage(n) == pytest.approx(coverage)
    if n < RANGE_ONLY:
        assert median_ci(values) == (10.0, 10.0 + n - 1)
        assert with_range(12.0, 10.0, 10.0 + n - 1, 1, count=n).endswith(f"; range of {n}, {100 * coverage:g}%)")
    else:
        assert median_ci_coverage(n) >= 0.95


def test_the_median_interval_holds_the_median_as_often_as_its_coverage_says():
    """Simulated: samples of an exponential distribution (median ln 2); the share of median_ci's intervals that
    hold ln 2 matches median_ci_coverage, 0.75 at 3 values, at least 0.95 at 30."""
    import math

    import numpy as np

    from ngbench.measure.timing import median_ci, median_ci_coverage

    rng = np.random.default_rng(7)
    for n in (3, 30):
        held = [lo <= math.log(2) <= hi for lo, hi in (median_ci(rng.exponential(size=n)) for _ in range(4000))]
        assert np.mean(held) == pytest.approx(median_ci_coverage(n), abs=0.025)
    assert median_ci_coverage(30) >= 0.95


def test_a_clean_median_of_few_inferences_warns_how_sure_it_is():
    from ngbench.measure.timing import latency_stats
    from ngbench.run import ci_warnings

    few, many = latency_stats([30e6, 36e6, 38e6]), latency_stats([float(v) for v in range(100, 130)])
    assert few["ci95_coverage"] == 0.75 and few["ci95_ms"] == [30000.0, 38000.0]
    assert ci_warnings(few) == ["the clean median's interval is the range of only 3 inferences: it holds the "
                                "median with 75.0% confidence, not 95%"]
    assert many["ci95_coverage"] >= 0.95 and ci_warnings(many) == []
