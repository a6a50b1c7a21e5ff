"""The profiler-cost calibration: the fit recovers known prices, a fake profiler cost is measured as such,
and the cache is used, refreshed or bypassed as `calibration.mode` says."""

import json
from pathlib import Path

import pytest

from ngbench.measure import calibration
from ngbench.measure.calibration import Loop, costs_for, fit_costs

SHAPES = {"view": (50, 0, 0, 100), "add": (50, 51, 0, 680), "linear": (300, 101, 50, 1000),
          "mixed": (285, 116, 10, 1500), "mixed_python": (285, 116, 10, 4300), "conv": (85, 33, 0, 780),
          "attention": (360, 105, 0, 1350), "wide_attention": (900, 161, 10, 2960), "deep_conv": (439, 173, 0, 1800),
          "module_stack": (528, 161, 16, 2590), "long_mixed": (17100, 6901, 600, 90000)}


def loops_priced(price_of, slowdown: float) -> list[Loop]:
    """The workloads' extra time for known prices: price_of(kind) per record, and the host slowdown."""
    loops = []
    for name, (ops, runtime, driver, clean_us) in SHAPES.items():
        extra = price_of("op") * ops + price_of("runtime") * runtime + price_of("driver") * driver
        loops.append(Loop(name, extra + slowdown * clean_us, clean_us, {"op": ops, "runtime": runtime, "driver": driver}))
    return loops


@pytest.mark.slow
def test_fit_recovers_a_known_record_price_and_slowdown_despite_one_outlier():
    loops = loops_priced(lambda kind: 0.6, 0.2)
    loops[1].extra_us *= 5                     # a workload caught in a slow phase of the host
    fitted = fit_costs(loops, ("op", "runtime", "driver"))
    assert fitted == pytest.approx({"op": 0.6, "runtime": 0.6, "driver": 0.6, "host_slowdown": 0.2}, rel=0.1)


@pytest.mark.slow
def test_one_price_for_every_record_kind_whatever_the_kinds_cost_apart():
    """Records priced apart (op 0.8, runtime 3.0, driver 1.0 µs) come back as one price between them that
    explains the workloads' total extra time: the fit does not try to tell the kinds apart."""
    prices = {"op": 0.8, "runtime": 3.0, "driver": 1.0}
    loops = loops_priced(prices.get, 0.1)
    fitted = fit_costs(loops, ("op", "runtime", "driver"))
    assert fitted["op"] == fitted["runtime"] == fitted["driver"]
    assert 0.8 < fitted["op"] < 3.0
    predicted = [fitted["op"] * sum(loop.records.values()) + fitted["host_slowdown"] * loop.clean_us for loop in loops]
    assert predicted[-1] == pytest.approx(loops[-1].extra_us, rel=0.05)     # the largest workload, as models are


def test_the_larger_workloads_run_only_where_the_host_feeds_a_gpu():
    """On the CPU the slowdown they price is not applied (slowed_host), and their compute would dominate."""
    names = set(calibration._torch_workloads("cpu"))
    assert names.isdisjoint(calibration.LARGER) and {"mixed", "attention_net"} <= names


def test_the_larger_workloads_run_wherever_they_are_built():
    """Built on the CPU here (a GPU host builds them on its GPU): each runs, and the stack keeps its input's shape."""
    import torch

    made = calibration._larger_workloads("cpu", lambda: torch.ones(1), torch.randn(1, 3, 32, 32))
    assert set(made) == set(calibration.LARGER)
    with torch.inference_mode():
        assert made["wide_attention"]().shape == (1, 96, 384) and made["deep_conv"]().shape == (1, 16, 32, 32)
        assert made["module_stack"]().shape == (1, 64, 128) and len(made["long_mixed"]()) == 60


def test_a_kind_no_workload_records_prices_nothing():
    loops = [Loop("view", 35.0, 42.0, {"op": 50.0})]
    assert fit_costs(loops, ("runtime",)) == {"runtime": 0.0}


class FakeClock:
    """time.perf_counter for the calibration module: a workload says how long it 'took'."""

    def __init__(self):
        self.now, self.pending = 0.0, 0.0

    def took(self, seconds: float) -> None:
        self.pending = seconds

    def perf_counter(self) -> float:
        self.now += self.pending
        self.pending = 0.0
        return self.now


@pytest.mark.slow
def test_measure_loop_reports_a_fake_profiler_cost_and_the_trace_records(monkeypatch, tmp_path):
    import torch

    clock = FakeClock()
    monkeypatch.setattr(calibration, "time", clock)
    a = torch.ones(8)
    clean = lambda: (torch.relu(a), clock.took(100e-6))          # noqa: E731
    profiled = lambda: (torch.relu(a), clock.took(130e-6))       # noqa: E731  30 µs of "profiler cost"
    loop = calibration.measure_loop("relu", clean, "cpu", lambda: None, str(tmp_path), iters=3, rounds=2,
                                    profiled_call=profiled)
    assert loop.extra_us == pytest.approx(30.0) and loop.clean_us == pytest.approx(100.0)
    assert loop.records["op"] >= 1 and loop.records["runtime"] == 0     # aten::relu (+ what it calls)


@pytest.mark.slow
def test_a_host_that_slows_steadily_does_not_add_to_the_profiler_cost(monkeypatch, tmp_path):
    """The host slows by 10 µs an inference from one block to the next (clean or profiled): each profiled
    block is compared with the clean blocks on either side of it, so the drift cancels and the fake
    profiler's 30 µs come back (against the clean block before it alone, 40)."""
    import torch

    clock = FakeClock()
    monkeypatch.setattr(calibration, "time", clock)
    a = torch.ones(8)
    state = {}

    def slowing(extra_us):
        def call():
            torch.relu(a)
            clock.took((100 + extra_us + 10 * state["block"]) * 1e-6)
        return call

    clean_call, profiled_call = slowing(0), slowing(30)

    def clean():
        state["block"] = state.get("block", -1) + (1 if state.get("last") != "clean" else 0)
        state["last"] = "clean"
        clean_call()

    def profiled():
        state["block"] = state["block"] + (1 if state["last"] != "profiled" else 0)
        state["last"] = "profiled"
        profiled_call()

    loop = calibration.measure_loop("relu", clean, "cpu", lambda: None, str(tmp_path), iters=3, rounds=3,
                                    profiled_call=profiled)
    assert loop.extra_us == pytest.approx(30.0)


def test_costs_are_cached_per_host_refreshed_on_force_and_off_prices_nothing(monkeypatch, tmp_path):
    calls = []

    def fake_torch(device):
        calls.append(device)
        return {"op": 1.5, "runtime": 0.0, "driver": 0.0, "host_slowdown": 0.05}, []

    import ngbench.measure.timing

    # the host's speed before and after the workloads, each time they run
    speeds = iter({"host_probe_us": v, "host_probe_mean_us": v + 1} for v in (2.0, 3.0, 5.0, 7.0))
    monkeypatch.setattr(ngbench.measure.timing, "host_probe", lambda: next(speeds))
    monkeypatch.setattr(calibration, "calibrate_torch", fake_torch)
    costs, note = costs_for("cached", str(tmp_path), "cpu", ("op", "runtime", "driver"))
    # the slowdown is stored, but the CPU is the host: its operators' compute is not slowed (slowed_host)
    assert costs.of("op") == 1.5 and costs.host_slowdown == 0.0 and note["measured_now"] and calls == ["cpu"]
    assert json.loads(Path(note["file"]).read_text())["costs_us"]["host_slowdown"] == 0.05
    assert (note["host_probe_us"], note["host_probe_mean_us"]) == (2.5, 3.5)
    assert json.loads(Path(note["file"]).read_text())["host_probe_us"] == 2.5
    again, note = costs_for("cached", str(tmp_path), "cpu", ("op", "runtime", "driver"))
    assert again == costs and not note["measured_now"] and calls == ["cpu"]          # read from the cache
    assert note["host_probe_us"] == 2.5
    _, note = costs_for("force", str(tmp_path), "cpu", ("op",))
    assert calls == ["cpu", "cpu"] and note["host_probe_us"] == 6.0
    off, note = costs_for("off", str(tmp_path), "cpu", ("op",))
    assert off.of("op") == 0.0 and off.host_slowdown == 0.0 and note["mode"] == "off"


def test_a_bad_mode_is_one_line_while_composing():
    """calibration.mode is a typed choice (ngbench.config.CalibrationMode): Hydra refuses it before any run."""
    from conftest import compose

    from ngbench.cli import config_error_message

    with pytest.raises(Exception) as caught:
        compose("calibration.mode=sometimes")
    assert config_error_message(caught.value) == ("calibration.mode=sometimes is not valid: Invalid value "
                                                  "'sometimes', expected one of [cached, force, off]")


def test_the_ort_chain_model_loads_in_the_installed_onnx_runtime(tmp_path):
    """onnx's newest IR version (14 with onnx 1.23) is newer than ONNX Runtime 1.31 reads (13): the calibration
    chain pins its IR version, so the ORT calibration does not fail on a fresh GPU host."""
    pytest.importorskip("onnxruntime")
    import onnx
    import onnxruntime as ort

    from ngbench.measure.calibration import CHAIN_IR_VERSION, _chain_model

    path = tmp_path / "chain.onnx"
    _chain_model(str(path), 3)
    assert onnx.load(str(path)).ir_version == CHAIN_IR_VERSION
    ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_the_host_slowdown_applies_only_where_the_host_feeds_a_gpu():
    assert calibration.slowed_host("cuda:0") and calibration.slowed_host("cuda:1", provider="cuda")
    assert not calibration.slowed_host("cpu") and not calibration.slowed_host("cuda:0", provider="cpu")
