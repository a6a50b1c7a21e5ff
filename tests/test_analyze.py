"""`python -m ngbench.analyze` on the hand-made traces of tests/fixtures/traces (known answers in its README),
through the real CLI, and the parsing underneath it."""

from __future__ import annotations

import gzip
import json
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import ROOT, read_summary, run_cli

FIXTURES = ROOT / "tests" / "fixtures" / "traces"
sys.path.insert(0, str(FIXTURES))
import make_traces  # noqa: E402


def analyze(*args: str):
    return run_cli(*map(str, args), module="ngbench.analyze", timeout=300)


def analysed(trace: Path, out: Path, *args: str) -> tuple[dict, pd.DataFrame]:
    result = analyze(trace, "--out", out, *args)
    assert result.returncode == 0, result.stderr[-3000:]
    return read_summary(out), pd.read_parquet(out / "ops.parquet")


def per_step_us(ops: pd.DataFrame, column: str = "wall_us") -> dict:
    """Group totals per step (µs), from the op rows."""
    steps = ops["iteration"].nunique()
    return {g: pytest.approx(v / steps) for g, v in ops.groupby("op_group")[column].sum().items()}


def test_fixture_files_are_what_make_traces_writes():
    for name, make in make_traces.TRACES.items():
        assert (FIXTURES / name).read_text() == make_traces.text_of(make()), f"rerun make_traces.py for {name}"


@pytest.mark.slow
def test_training_step_threads_phases_modules_and_report(tmp_path):
    summary, ops = analysed(FIXTURES / "training_step.json", tmp_path / "run")
    assert per_step_us(ops) == {"GEMM": 82, "Normalization": 27, "Activation": 22, "Elementwise": 18, "Idle": 51}
    assert (ops["wall_us"] == ops["wall_profiled_us"]).all()  # no calibration: the wall view is the profiled one
    assert ops.groupby("iteration")["wall_us"].sum().tolist() == [200, 200]
    step = ops[ops["iteration"] == 2].set_index("op")
    backward = "autograd::engine::evaluate_function: "
    assert step.loc[f"{backward}AddmmBackward0", ["phase", "op_group", "wall_us"]].tolist() == ["backward", "GEMM", 45]
    # a backward op takes the module of the forward op with its sequence number (module-wins applies)
    assert step.loc[f"{backward}GeluBackward0", ["module", "module_type", "group_source"]].tolist() == [
        "Net_0.GELU_0", "GELU", "module"]
    assert step.loc["aten::linear", ["module", "module_type"]].tolist() == ["Net_0.Linear_0", "Linear"]
    assert [list(shape) for shape in step.loc["aten::linear", "input_shapes"]] == [[4, 8], [16, 8], [16]]
    assert step.loc["aten::_foreach_add_", "phase"] == "optimizer"
    facts = summary["flow_facts"]
    assert facts["phases_ms"] == pytest.approx({"forward": 0.110, "backward": 0.074, "optimizer": 0.016})
    assert facts["threads"]["2"] == {"name": "pt_autograd_0", "op_rows": {"backward": 8}}
    assert facts["steps"]["found"] == [2, 3] and "ProfilerStep#0-1" in facts["steps"]["not_in_trace"]
    assert facts["ignored_events"] == {"ph=M": 2, "ph=s ac2g": 2, "ph=f ac2g": 2}
    assert facts["profiler"]["has_module_scopes"] and facts["profiler"]["has_input_shapes"]
    assert (summary["flow"], summary["platform"], summary["device"], summary["precision"]) == (
        "trace", "cuda", "cuda:0", "fp32")
    assert summary["environment"]["gpu"] == "NVIDIA H100 80GB HBM3"
    assert "no calibration" in summary["warnings"][0]
    kernels = pd.read_parquet(tmp_path / "run" / "kernels.parquet")
    assert len(kernels) == 16 and kernels["op"].notna().all()
    report = run_cli(str(tmp_path / "run"), module="ngbench.report")
    assert report.returncode == 0, report.stderr[-2000:]
    table = pd.read_csv(tmp_path / "run" / "report" / "breakdown.csv").set_index("op_group")
    assert table.loc["GEMM", "pct"] == pytest.approx(41.0)


@pytest.mark.slow
def test_steps_option_picks_steps_and_names_what_exists(tmp_path):
    _, ops = analysed(FIXTURES / "training_step.json", tmp_path / "one", "--steps", "3")
    assert set(ops["iteration"]) == {3}
    missing = analyze(FIXTURES / "training_step.json", "--out", tmp_path / "none", "--steps", "4-5")
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
    assert "training_step.json: --steps [4, 5] not in the trace; it holds ProfilerStep#[2, 3]" in missing.stderr
    assert not (tmp_path / "none").exists()
    wrong = analyze(FIXTURES / "training_step.json", "--steps", "three")
    assert wrong.returncode == 2 and "--steps 'three' is not valid" in wrong.stderr


@pytest.mark.slow
def test_two_gpus_and_nccl_kernels_give_a_communication_group(tmp_path):
    summary, ops = analysed(FIXTURES / "multi_gpu_nccl.json", tmp_path / "run")
    assert per_step_us(ops) == {"GEMM": 30.5, "Communication": 35.5, "Memory": 10, "Idle": 24}
    assert summary["device"] == "cuda:0,1" and summary["flow_facts"]["rank"] == 1
    devices = summary["flow_facts"]["devices"]
    assert devices["1"]["busy_us_in_steps"] == pytest.approx(61) and devices["0"]["busy_us_in_steps"] == 4
    assert set(devices["1"]["streams"]) == {"7", "13"}
    assert summary["flow_facts"]["collective_kernels"] == 1


@pytest.mark.slow
def test_cuda_graph_replay_and_triton_kernels(tmp_path):
    summary, ops = analysed(FIXTURES / "cuda_graph.json", tmp_path / "run")
    rows = ops.set_index("op")
    graph = rows.loc["[cuda graph replay]"]  # no capture in the trace: the replay stays whole
    assert (graph["op_group"], graph["kind"], graph["wall_us"], len(graph["kernels"])) == (
        "Other", "graph_replay", 45, 3)
    triton = rows.loc["triton_poi_fused_add_mul_0"]
    assert list(triton["fused_ops"]) == ["aten::add", "aten::mul"] and triton["op_group"] == "Elementwise"
    graphs = summary["flow_facts"]["cuda_graphs"]
    assert (graphs["launches"], graphs["captured_graphs"], graphs["replayed_kernels"]) == (1, 0, 3)
    assert graphs["device_share"] == pytest.approx(35 / 39) and graphs["unsplit_ms_per_step"] == 0.035
    assert summary["flow_facts"]["triton_kernels"] == 3 and summary["coverage"]["graph_replay_ms"] == 0.035
    assert any("the trace holds no capture of the graphs" in w for w in summary["warnings"])


@pytest.mark.slow
def test_cuda_graph_replay_split_back_to_its_captured_operators(tmp_path):
    summary, ops = analysed(FIXTURES / "cuda_graph_captured.json", tmp_path / "run")
    assert per_step_us(ops) == {"Elementwise": 10, "Logit": pytest.approx(40 / 3), "GEMM": pytest.approx(70 / 3),
                                "Activation": pytest.approx(25 / 3), "Idle": 45}
    assert list(ops.set_index("op").loc["aten::mm", "kernels"]) == ["sm90_xmma_gemm_f16f16_tn_n"]
    assert summary["flow_facts"]["cuda_graphs"]["captured_graphs"] == 1 and summary["coverage"]["device_pct"] == 100
    # the capture and its first replay lie before the step: counted, not attributed
    assert summary["flow_facts"]["outside_steps"] == {"cpu_op_events": 3, "device_activities": 3, "device_us": 35.0,
                                                      "device_activities_in_steps": 4}


@pytest.mark.slow
def test_rocm_trace(tmp_path):
    summary, ops = analysed(FIXTURES / "rocm.json", tmp_path / "run")
    assert per_step_us(ops) == {"GEMM": 25, "Activation": 5, "Idle": 20}
    assert summary["platform"] == "rocm" and summary["environment"]["gpu"] == "AMD Instinct MI300X"


@pytest.mark.slow
def test_cpu_only_trace_gets_the_host_time_breakdown_and_a_note(tmp_path):
    result = analyze(FIXTURES / "cpu_only.json", "--out", tmp_path / "run")
    assert result.returncode == 0, result.stderr
    assert "cpu_only.json: no device activity (no kernel, gpu_memcpy or gpu_memset events)" in result.stderr
    summary, ops = read_summary(tmp_path / "run"), pd.read_parquet(tmp_path / "run" / "ops.parquet")
    assert per_step_us(ops) == {"GEMM": 30, "Activation": 5, "Idle": 5}
    assert summary["platform"] == "cpu" and summary["flow_facts"]["steps"]["window"].startswith("the whole trace")
    assert summary["flow_facts"]["ignored_events"] == {"python_function": 1}
    assert not summary["flow_facts"]["profiler"]["has_input_shapes"]


def bad_traces(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    text = (FIXTURES / "training_step.json").read_text()
    training = make_traces.training_trace()
    no_kernels = {**training, "traceEvents": [e for e in training["traceEvents"] if e.get("cat") != "kernel"]}
    no_ops = {**training, "traceEvents": [e for e in training["traceEvents"] if e.get("cat") != "cpu_op"]}
    files = {"binary.json": b"\x89PNG\r\n\x1a\n", "object.json": json.dumps({"a": 1}).encode(),
             "truncated.json": text[: len(text) * 3 // 5].encode(),
             "no_kernels.json": make_traces.text_of(no_kernels).encode(),
             "no_ops.json": make_traces.text_of(no_ops).encode()}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    return {"binary.json": "is not JSON", "object.json": "has no traceEvents list",
            "truncated.json": "is truncated or malformed JSON",
            "no_kernels.json": "16 device launches (cudaLaunchKernel, ...) but no device activity",
            "no_ops.json": "no operator events (cpu_op)", "missing.json": "no such file"}


@pytest.mark.slow
def test_bad_input_gets_one_line_naming_the_file_and_exit_2(tmp_path):
    for name, expected in bad_traces(tmp_path).items():
        result = analyze(tmp_path / name, "--out", tmp_path / f"out-{name}")
        assert result.returncode == 2, (name, result.stderr)
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
        assert f"{tmp_path / name}: {expected}" in result.stderr and "expected" in result.stderr, result.stderr
        assert not (tmp_path / f"out-{name}").exists()


@pytest.mark.slow
def test_gz_and_several_traces_each_get_a_run_directory(tmp_path):
    packed = tmp_path / "training_step.json.gz"
    packed.write_bytes(gzip.compress((FIXTURES / "training_step.json").read_bytes()))
    result = analyze(packed, FIXTURES / "cpu_only.json", tmp_path / "broken.json", "--out", tmp_path / "sweep")
    assert result.returncode == 2 and "1 of 3 traces could not be analysed" in result.stderr
    ops = pd.read_parquet(tmp_path / "sweep" / "training_step" / "ops.parquet")
    assert per_step_us(ops)["GEMM"] == 82 and (tmp_path / "sweep" / "cpu_only" / "summary.json").exists()
    report = run_cli(str(tmp_path / "sweep"), module="ngbench.report")
    assert report.returncode == 0 and len(pd.read_csv(tmp_path / "sweep" / "report" / "cells.csv")) == 2


def test_trace_starting_with_a_utf8_byte_order_mark_parses(tmp_path):
    """Some Windows tools write a BOM before the JSON: each layout (one event per line, compact, gzipped) reads."""
    bom = b"\xef\xbb\xbf"
    lined = tmp_path / "lined.json"
    lined.write_bytes(bom + (FIXTURES / "training_step.json").read_bytes())
    compact = tmp_path / "compact.json.gz"
    compact.write_bytes(gzip.compress(bom + json.dumps(make_traces.training_trace()).encode()))
    result = analyze(lined, compact, "--out", tmp_path / "sweep")
    assert result.returncode == 0, result.stderr[-2000:]
    for name in ("lined", "compact"):
        ops = pd.read_parquet(tmp_path / "sweep" / name / "ops.parquet")
        assert per_step_us(ops) == {"GEMM": 82, "Normalization": 27, "Activation": 22, "Elementwise": 18, "Idle": 51}


@pytest.mark.slow
def test_compact_and_chunked_layouts_parse_to_the_same_table(tmp_path, monkeypatch):
    from ngbench.trace import event_table
    from ngbench.trace.chrome_json import ChromeTrace

    compact = tmp_path / "compact.json"
    compact.write_text(json.dumps(make_traces.training_trace()))
    assert ChromeTrace(compact).chunks() is None and ChromeTrace(FIXTURES / "training_step.json").chunks() is not None
    streamed = event_table.read_trace(compact)
    monkeypatch.setattr(event_table, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr("ngbench.trace.chrome_json.CHUNK_BYTES", 2000)  # several chunks, two processes
    chunked = event_table.read_trace(FIXTURES / "training_step.json", workers=2)
    pd.testing.assert_frame_equal(streamed.events.astype(str), chunked.events.astype(str))
    assert streamed.ignored_events == chunked.ignored_events and chunked.metadata["traceName"] == "training_step.json"


def test_taxonomy_knows_backward_and_collective_ops():
    from ngbench.taxonomy import load_taxonomy

    taxonomy = load_taxonomy()
    cases = {"autograd::engine::evaluate_function: MaxPool2DWithIndicesBackward0": "Pooling",
             "autograd::engine::evaluate_function: UnsafeViewBackward0": "Memory",
             "autograd::engine::evaluate_function: ScaledDotProductFlashAttentionBackward0": "GEMM",
             "autograd::engine::evaluate_function: UpsampleBilinear2DBackward0": "Interpolation",
             "autograd::engine::evaluate_function: NllLossBackward0": "Other",
             "c10d::allgather_": "Communication", "_c10d_functional::all_reduce": "Communication",
             "ncclKernel_AllReduce_RING_LL_Sum_float": "Communication"}
    assert {name: taxonomy.classify_one(name).group for name in cases} == cases
    assert taxonomy.classify_one("autograd::engine::evaluate_function: FooBackward0").group_source == "unmapped"


def test_threads_split_idle_time_and_launches_match_their_own_thread():
    from ngbench.trace import kineto
    from ngbench.trace.reconstruct import Costs
    from ngbench.trace.result import attribute_windows

    trace = {"traceEvents": [
        make_traces.op("ProfilerStep#0", 0, 100, cat="user_annotation"),
        make_traces.op("aten::mm", 0, 40), make_traces.op("aten::add", 20, 60, tid=2),
        make_traces.launch(30, 31, 1, tid=2), make_traces.device("add_kernel", 60, 70, 1)]}
    events = kineto.events_from_trace(trace)
    windows = kineto.windows(events, marks=kineto.iteration_windows(events), all_threads=True)
    rows = attribute_windows(windows, Costs({})).ops.set_index("op")
    # the launch at 30 lies inside both ops in time, but only the add of its own thread launched it
    assert rows.loc["aten::add", "kernels"] == ["add_kernel"] and rows.loc["aten::mm", "device_us"] == 0
    # idle [0, 60]: [0, 20] mm alone, [20, 40] split between mm and add, [40, 60] add alone
    assert rows.loc["aten::mm", "wall_us"] == pytest.approx(30)
    assert rows.loc["aten::add", "wall_us"] == pytest.approx(30 + 10)
    assert rows["wall_us"].sum() == pytest.approx(100)


@pytest.fixture(scope="module")
def own_run(tmp_path_factory) -> Path:
    """A tiny CPU run of ngbench that saves its trace (one block: the trace holds every profiled step)."""
    from conftest import TINY

    run_dir = tmp_path_factory.mktemp("own") / "run"
    settings = [a for a in TINY if not a.startswith(("blocks=", "profile_iters="))]
    result = run_cli("model=gpt2", *settings, "blocks=1", "profile_iters=3", "save_trace=true",
                     f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


@pytest.mark.slow
def test_own_trace_analysed_gives_the_runs_profiled_group_totals(own_run, tmp_path):
    trace = own_run / "trace.json"
    head = trace.read_text()[:300]
    assert head.index('"distributedInfo": {"backend": "none", "rank": 0, "world_size": 1}') < head.index("traceEvents")
    summary, ops = analysed(trace, tmp_path / "analysed")
    run_ops = pd.read_parquet(own_run / "ops.parquet")
    # the same groups in the profiled view (module scopes come back from the trace's `ngbench module_type` args:
    # gpt2's NewGELUActivation keeps its element-wise ops in Activation)
    assert per_step_us(ops, "wall_profiled_us") == per_step_us(run_ops, "wall_profiled_us")
    assert "Activation" in set(ops["op_group"]) and (ops["group_source"] == "module").any()
    assert summary["flow_facts"]["steps"]["found"] == [1, 2, 3]  # ProfilerStep#0: the profiler's warm-up


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:The inplace keyword")  # HTA's own pandas calls
def test_own_trace_is_what_hta_reads(own_run):
    """HTA's parser (when installed) finds the iterations and the rank, without its ProfilerStep warning,
    and counts no warm-up step; without HTA, the same fields are checked."""
    from ngbench.trace.kineto import iteration_windows, read_trace

    trace = read_trace(own_run / "trace.json")
    steps = iteration_windows(trace.events)
    assert [k for k, *_ in steps] == [1, 2, 3] and trace.metadata["distributedInfo"]["rank"] == 0
    ops = trace.events[trace.events["cat"] == "cpu_op"]
    inside = [(ops["ts"] >= lo) & (ops["end"] <= hi) for _, lo, hi, _ in steps]
    assert pd.concat(inside, axis=1).any(axis=1).all()  # no operator of an unmarked (warm-up) inference
    assert (ops["scope"] != "").any()  # the `ngbench module` args are in the trace
    try:
        from hta.trace_analysis import TraceAnalysis
    except ImportError:
        return
    import logging

    from hta.configs.config import logger as hta_logger

    records: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())
    hta_logger.addHandler(handler)
    folder = own_run / "hta"
    folder.mkdir(exist_ok=True)
    shutil.copyfile(own_run / "trace.json", folder / "trace.json")
    try:
        analysis = TraceAnalysis(trace_dir=str(folder))
    finally:
        hta_logger.removeHandler(handler)
    assert not [r for r in records if "ProfilerStep not found" in r], records
    iterations = set(analysis.t.get_trace(0)["iteration"])
    assert iterations == {1, 2}  # HTA leaves out the last step; nothing before ProfilerStep#1 is there
