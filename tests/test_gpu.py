"""The GPU tier (`pytest -m gpu`, `make test-gpu`, benchmarks/gpu_tests.sh): what only a CUDA machine can show.

Each test checks a number against something measured independently of the code under test: CUDA-event timing
against a sleep kernel timed on the host clock; a CUPTI trace of a tiny model with every kernel attributed;
NVML energy against a busy loop; ONNX Runtime's io-binding against the torch model's outputs; LLM.int8() on a
tiny Llama; two-stream attribution against the raw trace's kernel durations per stream. On a machine without
CUDA, tests/conftest.py skips them, saying so. The helpers that read the raw trace are tested here on a
hand-made two-stream trace, on any machine.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import TINY, read_summary, run_cli

from ngbench.schema import IDLE_OP, UNATTRIBUTED_OP

# the tiny CPU settings of the other tests, on the GPU
TINY_CUDA = [o for o in TINY if o != "platform=cpu"] + ["platform=cuda"]
DEVICE_CATEGORIES = ("kernel", "gpu_memcpy", "gpu_memset")
LAUNCH_CATEGORIES = ("cuda_runtime", "cuda_driver")
STEP_PREFIX = "ProfilerStep#"
TWO_OPS = ("aten::mm", "aten::mul")     # the two-stream workload's operators, one per stream


# ----------------------------------------------------------------------------- the raw trace, read by hand
def device_us_by_stream(trace: dict) -> list[dict[int, float]]:
    """Per profiled iteration (`ProfilerStep#k` range, in time order): the summed duration of the device
    activity on each stream whose launch lies inside the range. Read straight from the Chrome trace's JSON,
    with none of ngbench's parsing, so it can check ngbench's attribution."""
    events = [e for e in trace["traceEvents"] if e.get("ph") == "X"]
    steps = sorted((e["ts"], e["ts"] + e["dur"]) for e in events      # the host's ranges, not the GPU's copies
                   if e.get("cat") in ("user_annotation", "cpu_op") and str(e.get("name", "")).startswith(STEP_PREFIX))
    launched_at = {e["args"]["correlation"]: e["ts"] for e in events
                   if e.get("cat") in LAUNCH_CATEGORIES and "correlation" in e.get("args", {})}
    totals: list[dict[int, float]] = [{} for _ in steps]
    for event in events:
        if event.get("cat") not in DEVICE_CATEGORIES:
            continue
        launch_ts = launched_at.get(event["args"].get("correlation"))
        for k, (lo, hi) in enumerate(steps):
            if launch_ts is not None and lo <= launch_ts <= hi:
                stream = int(event["args"]["stream"])
                totals[k][stream] = totals[k].get(stream, 0.0) + float(event["dur"])
    return totals


def check_two_stream_attribution(ops, kernels, by_stream: list[dict[int, float]], op_names: tuple[str, str]):
    """Each iteration: the two operators' device time equals the raw trace's device time on their streams,
    each operator's kernels sit on one stream of their own, and nothing is left unattributed."""
    iterations = sorted(ops["iteration"].unique())
    assert len(iterations) == len(by_stream) and len(iterations) >= 1
    for iteration, expected in zip(iterations, by_stream):
        assert len(expected) == 2, f"iteration {iteration}: device work on streams {sorted(expected)}"
        rows = ops[ops["iteration"] == iteration].set_index("op")
        mine = kernels[kernels["iteration"] == iteration]
        assert UNATTRIBUTED_OP not in rows.index
        streams = {}
        for op_name in op_names:
            seq = int(rows.loc[op_name, "seq"])
            own_streams = set(mine.loc[mine["op_seq"] == seq, "stream"])
            assert len(own_streams) == 1, f"{op_name}'s kernels ran on streams {sorted(own_streams)}"
            stream = streams[op_name] = int(own_streams.pop())
            assert rows.loc[op_name, "device_us"] == pytest.approx(expected[stream], rel=1e-9)
        assert sorted(streams.values()) == sorted(expected)               # two different streams


def check_device_time_is_kernel_time(ops, kernels) -> None:
    """Every kernel row has its operator row, each operator's device time is its kernels' summed durations,
    and an operator without kernels has none."""
    per_op = kernels.groupby(["iteration", "op_seq"])["device_us"].sum()
    own = ops.set_index(["iteration", "seq"])["device_us"]
    assert set(per_op.index) <= set(own.index)
    assert own.reindex(per_op.index).to_numpy() == pytest.approx(per_op.to_numpy(), rel=1e-9)
    assert own.drop(per_op.index).eq(0).all()


def _hand_made_two_stream_trace() -> dict:
    """Two iterations; aten::mm launches one kernel on stream 7, aten::mul two on stream 13, overlapping it."""
    def x(name, cat, ts, dur, pid=1, tid=1, **args):
        return {"ph": "X", "cat": cat, "name": name, "ts": ts, "dur": dur, "pid": pid, "tid": tid, "args": args}

    events = []
    for k, base in enumerate((1000.0, 2000.0), start=1):
        corr = 10 * k
        events += [
            x(f"ProfilerStep#{k}", "user_annotation", base, 500),
            x(f"ProfilerStep#{k}", "gpu_user_annotation", base + 20, 110, pid=0, tid=7),   # Kineto's GPU-side copy
            x("aten::mm", "cpu_op", base + 10, 20), x("cudaLaunchKernel", "cuda_runtime", base + 15, 2, correlation=corr),
            x("aten::mul", "cpu_op", base + 40, 30),
            x("cudaLaunchKernel", "cuda_runtime", base + 45, 2, correlation=corr + 1),
            x("cudaLaunchKernel", "cuda_runtime", base + 60, 2, correlation=corr + 2),
            x("sm90_gemm", "kernel", base + 20, 100 + k, pid=0, tid=7, correlation=corr, stream=7),
            x("vectorized_elementwise_kernel", "kernel", base + 50, 30, pid=0, tid=13, correlation=corr + 1,
              stream=13),
            x("vectorized_elementwise_kernel", "kernel", base + 90, 20.5, pid=0, tid=13, correlation=corr + 2,
              stream=13),
            x("cudaDeviceSynchronize", "cuda_runtime", base + 75, 400, correlation=corr + 3),
        ]
    return {"traceEvents": events}


def test_two_stream_check_on_a_hand_made_trace():
    """The GPU test's reading of the raw trace, and its check of ngbench's attribution, on known numbers."""
    from ngbench.trace import kineto
    from ngbench.trace.reconstruct import Costs
    from ngbench.trace.result import attribute_windows

    trace = _hand_made_two_stream_trace()
    by_stream = device_us_by_stream(trace)
    assert by_stream == [{7: 101.0, 13: 50.5}, {7: 102.0, 13: 50.5}]
    result = attribute_windows(kineto.windows(kineto.events_from_trace(trace)), Costs({}))
    check_two_stream_attribution(result.ops, result.kernels, by_stream, TWO_OPS)
    check_device_time_is_kernel_time(result.ops, result.kernels)
    doubled = result.ops.assign(device_us=result.ops["device_us"] * 2)
    with pytest.raises(AssertionError):
        check_device_time_is_kernel_time(doubled, result.kernels)
    # the check can fail: the mul's second kernel moved to the mm's stream
    moved = result.kernels.copy()
    moved.loc[moved["device_us"] == 20.5, "stream"] = 7
    with pytest.raises(AssertionError):
        check_two_stream_attribution(result.ops, moved, by_stream, TWO_OPS)
    wrong = result.ops.copy()
    wrong.loc[wrong["op"] == "aten::mul", "device_us"] = 30.0   # one of its two kernels lost
    with pytest.raises(AssertionError):
        check_two_stream_attribution(wrong, result.kernels, by_stream, TWO_OPS)


# ----------------------------------------------------------------------------- the GPU tier
def _host_ms_per_sleep(cycles: int, count: int) -> float:
    """Mean duration of `count` back-to-back torch.cuda._sleep(cycles) kernels, on the host clock (the launch
    and the final synchronise are a few microseconds against milliseconds of spinning)."""
    import torch

    torch.cuda.synchronize()
    began = time.perf_counter()
    for _ in range(count):
        torch.cuda._sleep(cycles)
    torch.cuda.synchronize()
    return (time.perf_counter() - began) * 1000.0 / count


@pytest.mark.gpu
def test_cuda_event_timing_matches_a_sleep_kernel_timed_on_the_host():
    import torch

    from ngbench.measure.timing import time_block

    _host_ms_per_sleep(20_000_000, 10)                                 # context, clocks up
    cycles_per_ms = 20_000_000 / _host_ms_per_sleep(20_000_000, 5)
    cycles = int(cycles_per_ms * 10)                                   # a 10 ms kernel
    before_ms = _host_ms_per_sleep(cycles, 10)
    latencies_us = time_block(lambda: torch.cuda._sleep(cycles), torch.cuda.synchronize, use_cuda_events=True,
                              min_iters=10)
    after_ms = _host_ms_per_sleep(cycles, 10)
    expected_ms = (before_ms + after_ms) / 2
    assert 8.0 < expected_ms < 12.0, (before_ms, after_ms)
    assert len(latencies_us) == 10
    # the events time the kernel, not the launch (infer() returns in microseconds)
    assert pd.Series(latencies_us).median() / 1000.0 == pytest.approx(expected_ms, rel=0.05)


@pytest.mark.gpu
def test_nvml_energy_of_a_busy_loop_is_a_plausible_power():
    import torch

    from ngbench.measure.energy import EnergyTracker

    a = torch.randn(4096, 4096, device="cuda")
    torch.cuda.synchronize()
    with EnergyTracker(["cuda:0"]) as energy:
        began = time.perf_counter()
        while time.perf_counter() - began < 2.0:
            for _ in range(10):
                a = torch.tanh(a @ a)
            torch.cuda.synchronize()
        seconds = time.perf_counter() - began
    assert energy.note == "" and energy.joules is not None, energy.note
    watts = energy.joules / seconds
    assert 30.0 < watts < 750.0, watts        # an H100 idles near 70 W and is capped at 700 W


@pytest.mark.gpu
def test_cupti_trace_of_a_tiny_model_attributes_every_kernel(tmp_path):
    """model=gpt2 on CUDA through the CLI, with calibration (the rebuilt timeline on CUDA) and energy."""
    run_dir = tmp_path / "run"
    tiny = [o for o in TINY_CUDA if o != "min_time_s=0"] + ["min_time_s=2"]   # 1 s per block: energy ticks
    result = run_cli("model=gpt2", *tiny, "save_trace=true", f"calibration.dir={tmp_path / 'calibration'}",
                     f"hydra.run.dir={run_dir}", timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = read_summary(run_dir)
    assert summary["status"] == "ok" and summary["device"].startswith("cuda")
    assert summary["unmapped_ops"] == {} and summary["unmapped_kernels"] == {}
    ops = pd.read_parquet(run_dir / "ops.parquet")
    kernels = pd.read_parquet(run_dir / "kernels.parquet")
    assert len(kernels) > 0 and UNATTRIBUTED_OP not in set(ops["op"])
    check_device_time_is_kernel_time(ops, kernels)
    # the kernels are CUPTI's: the saved trace (the last block's) holds each kernel of that block by name
    iterations = pd.DataFrame(summary["iterations"])
    last_block = iterations.loc[iterations["block"] == iterations["block"].max(), "iteration"]
    with open(run_dir / "trace.json") as handle:
        traced = {e["name"] for e in json.load(handle)["traceEvents"] if e.get("cat") in DEVICE_CATEGORIES}
    assert set(kernels.loc[kernels["iteration"].isin(last_block), "kernel"]) <= traced
    assert summary["groups"]["GEMM"]["device_ms"] > 0 and ops.loc[ops["op_group"] == "GEMM", "kernels"].map(len).gt(0).any()
    kept = pd.DataFrame(summary["iterations"]).query("not stalled").set_index("iteration")
    walls = ops.groupby("iteration")["wall_us"].sum()
    assert walls.to_numpy() == pytest.approx(kept.loc[walls.index, "rebuilt_us"].to_numpy(), rel=1e-6)
    assert 0 < summary["reconstructed_ms"] <= summary["profiled_ms"]
    energy = summary["energy"]
    assert energy["joules_per_inference"] > 0 and 30.0 < energy["avg_power_w"] < 1500.0, energy


@pytest.mark.gpu
def test_ort_cuda_run_puts_nodes_on_the_cuda_provider(tmp_path):
    run_dir = tmp_path / "run"
    result = run_cli("model=gpt2", "flow=ort", *TINY_CUDA, "calibration.mode=off",
                     f"flow.cache_dir={tmp_path / 'onnx'}", f"hydra.run.dir={run_dir}", timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = read_summary(run_dir)
    assert summary["status"] == "ok" and summary["flow"] == "ort"
    facts = summary["flow_facts"]
    assert facts["providers"][0] == "CUDAExecutionProvider"
    ops = pd.read_parquet(run_dir / "ops.parquet")
    assert facts["nodes_by_provider"].get("CUDAExecutionProvider", 0) > 0, facts["nodes_by_provider"]
    on_cuda = ops[ops["provider"] == "CUDAExecutionProvider"]
    assert on_cuda["device_us"].sum() > 0 and on_cuda["kernels"].map(len).gt(0).any()
    check_device_time_is_kernel_time(ops, pd.read_parquet(run_dir / "kernels.parquet"))
    assert summary["groups"]["GEMM"]["device_ms"] > 0 and summary["unmapped_ops"] == {}


@pytest.mark.gpu
def test_ort_cuda_sessions_share_one_copy_of_the_weights(tmp_path):
    """flow.share_weights (on by default): the clean and the profiled session of a CUDA run read the weights
    from one set of GPU values. Zeroing the embedding there changes both sessions' outputs to the bias alone."""
    import numpy as np
    import torch

    from ngbench.flows.base import RunContext
    from ngbench.flows.ort.config import OrtConfig
    from ngbench.flows.ort.flow import OrtFlow
    from ngbench.models.base import ModelBundle

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Embedding(10, 8), torch.nn.Linear(8, 4)).eval().cuda()
    ids = torch.randint(0, 10, (2, 3), device="cuda")
    ctx = RunContext(device="cuda:0", precision="fp32", batch_size=2, quant=None, model_name="emb",
                     run_dir=str(tmp_path / "run"), model_cfg={"name": "emb"})
    flow = OrtFlow(ctx, OrtConfig(name="ort", cache_dir=str(tmp_path / "onnx")))
    flow.prepare(ModelBundle(model=model, args=(ids,), input_names=["ids"], output_names=["y"]))
    shared = flow.facts()["shared_weights"]
    assert shared["initializers"] == 2 and all(v.device_name().lower() == "cuda" for v in flow.shared.values())
    plain = flow.infer().copy_outputs_to_cpu()[0]
    with flow.profiler() as profiler:
        profiled = profiler.session
        assert np.allclose(profiled.run().copy_outputs_to_cpu()[0], plain, atol=1e-5)
        next(v for v in flow.shared.values() if v.shape() == [10, 8]).update_inplace(np.zeros((10, 8), np.float32))
        for out in (flow.infer().copy_outputs_to_cpu()[0], profiled.run().copy_outputs_to_cpu()[0]):
            assert np.allclose(out, out[0, 0]) and not np.allclose(plain, plain[0, 0])


@pytest.mark.gpu
def test_ort_cuda_io_binding_reads_the_torch_tensor_in_place(tmp_path):
    """The clean session is bound to the torch CUDA input: overwriting that tensor in place changes the output,
    and the outputs stay on the GPU."""
    import torch

    from ngbench.flows.base import RunContext
    from ngbench.flows.ort.config import OrtConfig
    from ngbench.flows.ort.flow import OrtFlow
    from ngbench.models.base import ModelBundle

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.LayerNorm(32), torch.nn.GELU(),
                                torch.nn.Linear(32, 8)).eval().cuda()
    x, other = torch.randn(4, 16, device="cuda"), torch.randn(4, 16, device="cuda")
    with torch.no_grad():   # another input, not 2x: LayerNorm makes the output nearly blind to a scale
        expected, expected_other = model(x).cpu().numpy(), model(other).cpu().numpy()
    ctx = RunContext(device="cuda:0", precision="fp32", batch_size=4, quant=None, model_name="seq",
                     run_dir=str(tmp_path / "run"), model_cfg={"name": "seq"})
    flow = OrtFlow(ctx, OrtConfig(name="ort", cache_dir=str(tmp_path / "onnx")))
    flow.prepare(ModelBundle(model=model, args=(x,), input_names=["x"], output_names=["y"]))
    assert flow.provider == "cuda" and flow.clean.binding is not None
    binding = flow.infer()
    assert binding.get_outputs()[0].device_name().lower() == "cuda"
    assert abs(expected - expected_other).max() > 0.1
    # ORT's CUDA provider may multiply in TF32 (torch does not): 2e-2 is far tighter than the other input's gap
    assert binding.copy_outputs_to_cpu()[0] == pytest.approx(expected, abs=2e-2)
    flow.clean.bound["x"].copy_(other)
    torch.cuda.synchronize()
    assert flow.infer().copy_outputs_to_cpu()[0] == pytest.approx(expected_other, abs=2e-2)


@pytest.mark.gpu
def test_llm_int8_on_a_tiny_llama(tmp_path):
    run_dir = tmp_path / "run"
    result = run_cli("model=llama2", "+quant=int8", "flow=torch", "precision=fp16", *TINY_CUDA,
                     "calibration.mode=off", f"hydra.run.dir={run_dir}", timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = read_summary(run_dir)
    assert summary["status"] == "ok" and summary["quant"] == "int8"
    quantization = summary["flow_facts"]["quantization"]
    assert quantization["method"].startswith("LLM.int8()") and quantization["linear_layers"] > 0
    assert summary["groups"].get("Quantization", {}).get("device_ms", 0) > 0, sorted(summary["groups"])
    assert summary["unmapped_ops"] == {}
    ops = pd.read_parquet(run_dir / "ops.parquet")
    int8 = ops[ops["kind"] == "int8_matmul"]
    assert len(int8) > 0 and set(int8["op_group"]) == {"GEMM"} and int8["device_us"].gt(0).all()
    quantize_ops = ops.loc[ops["op_group"] == "Quantization", "op"]
    assert quantize_ops.str.startswith("bitsandbytes::").any(), sorted(set(quantize_ops))


@pytest.mark.gpu
def test_two_stream_attribution_matches_the_trace(tmp_path):
    """aten::mm on one stream and aten::mul on another, overlapping: each operator's device time is the raw
    trace's device time on its stream."""
    import torch

    from ngbench.trace.reconstruct import Costs
    from ngbench.trace.torch_profiler import KinetoProfiler

    s1, s2 = torch.cuda.Stream(), torch.cuda.Stream()
    a, b = torch.randn(1024, 1024, device="cuda"), torch.randn(1024, 1024, device="cuda")
    c = torch.randn(16 << 20, device="cuda")
    torch.cuda.synchronize()

    def infer():
        with torch.cuda.stream(s1):
            torch.mm(a, b)
        with torch.cuda.stream(s2):
            torch.mul(c, 3.0)

    trace_path = tmp_path / "trace.json"
    with KinetoProfiler(infer, torch.cuda.synchronize, "cuda:0", warmup=2, keep_trace=str(trace_path)) as profiler:
        profiler.block(2)
        result = profiler.result(Costs({}))
    with open(trace_path) as handle:
        by_stream = device_us_by_stream(json.load(handle))
    ops = result.ops[~result.ops["op"].isin([IDLE_OP])]
    assert set(ops["op"]) == set(TWO_OPS)
    check_two_stream_attribution(result.ops, result.kernels, by_stream, TWO_OPS)
    mul_seq = set(ops.loc[ops["op"] == "aten::mul", "seq"])
    mul_kernels = result.kernels[result.kernels["op_seq"].isin(mul_seq)]["kernel"]
    assert mul_kernels.str.contains("elementwise").all()
    # each iteration's wall time adds up to its window, overlap or not
    sums = result.ops.groupby("iteration")["wall_us"].sum().to_numpy()
    assert sums == pytest.approx(result.kept["profiled_us"].to_numpy(), rel=1e-9)


@pytest.mark.slow
def test_gpu_tests_skip_without_cuda_saying_why():
    """On a machine without CUDA, `pytest -m gpu` collects the tier and skips each test with the reason."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the skip path needs one without")
    result = run_cli("-m", "gpu", "-q", "-rs", "-p", "no:cacheprovider", str(Path(__file__)), module="pytest",
                     timeout=300)
    assert result.returncode == 0, result.stdout[-3000:]
    gpu_tests = sum(1 for line in Path(__file__).read_text().splitlines() if line == "@pytest.mark.gpu")
    assert f"{gpu_tests} skipped" in result.stdout and result.stdout.count("needs a CUDA GPU") >= 1
