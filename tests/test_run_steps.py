"""ngbench.run's own steps on fakes (no model is built): resume skips only finished cells, and energy per
inference is over the clean inferences that were timed while it was measured."""

from types import SimpleNamespace

import pytest
from omegaconf import OmegaConf

import ngbench.run as run_module
from ngbench.record import CellKey, Summary, write_run

KEY = CellKey(model="gpt2", variant="tiny", task="text", flow="torch", platform="cpu", device="cpu",
              precision="fp32", quant="", batch_size=1)


@pytest.fixture
def measured(monkeypatch):
    """run.run with the measurement replaced: the list of run directories it measured."""
    calls = []
    monkeypatch.setattr(run_module, "checked_context", lambda cfg, run_dir: ("ctx", "flow_cfg"))
    monkeypatch.setattr(run_module, "_measure", lambda cfg, ctx, flow_cfg, run_dir: calls.append(run_dir) or
                        {"status": "ok", "run_id": "new"})
    return calls


@pytest.mark.parametrize("status, resume, reruns", [("ok", True, False), ("failed", True, True), ("ok", False, True)])
def test_resume_skips_only_a_cell_that_finished_ok(tmp_path, measured, status, resume, reruns):
    write_run(tmp_path, Summary(status=status, key=KEY, run_id="old"))
    (tmp_path / ".ops.parquet.x.tmp").write_text("left by a killed run")
    result = run_module.run(OmegaConf.create({"resume": resume}), tmp_path)
    assert measured == ([tmp_path] if reruns else [])
    assert result["run_id"] == ("new" if reruns else "old")
    assert (tmp_path / ".ops.parquet.x.tmp").exists() is not reruns   # a rerun starts from a clean directory


def test_resume_runs_a_cell_never_run(tmp_path, measured):
    run_module.run(OmegaConf.create({"resume": True}), tmp_path / "new")
    assert measured == [tmp_path / "new"]


class FakeEnergy:
    """0.35 J per clean block, over a window of 5 ms (the block's 3-4 ms of inferences and the host's time
    between them)."""

    def __init__(self, devices):
        self.joules, self.seconds, self.note, self.power_limit_w = None, 0.0, "fake", None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.joules, self.seconds = 0.35, 0.005
        return False


class FakeMemory:
    def __init__(self, peak):
        self.peak_bytes, self.by_device, self.kind = peak, {}, "host"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_energy_per_inference_is_over_the_clean_inferences(monkeypatch):
    import ngbench.measure.energy
    import ngbench.measure.timing

    timed, profiled = [], []
    monkeypatch.setattr(ngbench.measure.energy, "EnergyTracker", FakeEnergy)
    monkeypatch.setattr(ngbench.measure.timing, "time_block",
                        lambda infer, sync, events, iters, min_time_s: timed.append(iters) or [1000.0] * iters)
    speeds = iter([{"host_probe_us": 2.5}, {"host_probe_us": 4.0}])   # probed between each clean and profiled block
    order = []
    monkeypatch.setattr(ngbench.measure.timing, "host_probe", lambda: order.append("probe") or next(speeds))
    peaks = iter([100, 300])
    flow = SimpleNamespace(clean_timer="wall", infer=None, synchronize=None,
                           memory_probe=lambda devices: FakeMemory(next(peaks)))
    profiler = SimpleNamespace(block=lambda n: order.append("profiled") or profiled.append(n))
    cfg = OmegaConf.create({"min_time_s": 0.0})
    sampling = {"blocks": 2, "iters": 7, "profile_iters": 3}
    clean, energy, memory, probes = run_module._blocks(cfg, sampling, SimpleNamespace(is_cuda=False), flow, profiler,
                                                       ["cpu"])
    assert (timed, profiled) == ([4, 3], [2, 1])
    assert probes == [{"host_probe_us": 2.5}, {"host_probe_us": 4.0}] and order == ["probe", "profiled"] * 2
    # 0.7 J over 7 clean inferences; the power is over the two windows' 10 ms, not the 7 ms of inferences
    assert energy["joules_per_inference"] == pytest.approx(0.1)
    assert energy["avg_power_w"] == pytest.approx(70.0) and energy["seconds"] == pytest.approx(0.01)
    assert memory == {"peak_bytes": 300, "kind": "host"}
    assert [len(block) for block in clean] == [4, 3]


def test_a_slow_inference_measures_fewer_blocks_and_tells_the_profilers(monkeypatch):
    """Warm-up inferences of 4 s (a fake clock) and max_time_s=10: two warm-ups (the second is the estimate),
    then the floors: 3 blocks of one clean, one unmarked and one marked profiled inference, set where the
    profilers read it (ctx.profile_warmup) and said in the summary's warnings."""
    import ngbench.measure.timing as timing

    clock = iter(range(0, 100, 4))
    monkeypatch.setattr(timing.time, "perf_counter", lambda: float(next(clock)))
    inferences = []
    flow = SimpleNamespace(infer=lambda: inferences.append(1), synchronize=lambda: None)
    ctx = SimpleNamespace(profile_warmup=2)
    cfg = OmegaConf.create({"warmup": 3, "iters": 30, "profile_iters": 12, "blocks": 6, "profile_warmup": 2,
                            "max_time_s": 10.0})
    sampling = run_module._plan(cfg, ctx, flow)
    assert len(inferences) == 2 and sampling["warmup_s"] == [4.0, 4.0]
    assert {k: sampling[k] for k in ("iters", "profile_iters", "blocks", "profile_warmup", "capped")} == \
        {"iters": 3, "profile_iters": 3, "blocks": 3, "profile_warmup": 1, "capped": True}
    assert ctx.profile_warmup == 1
    assert run_module.sampling_warnings(sampling) == [
        "measured 3 clean and 3 profiled inferences in 3 blocks, fewer than configured: an inference took 4.00 s "
        "in warm-up and max_time_s=10 (the CIs are wider)"]
