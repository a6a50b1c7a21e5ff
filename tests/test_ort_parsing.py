"""flow=ort's pure-Python parts, known answers on hand-made data: ORT's profile parser, CUDA launch-window
matching, clock alignment, scopes of rewritten nodes, CPU fallbacks, the quantizer's disk check. None of them
needs onnxruntime (or torch): they run where ORT is not installed, which the last test checks."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ngbench.errors import UserError
from ngbench.schema import IDLE_OP, UNATTRIBUTED_OP
from ngbench.trace.reconstruct import Costs
from ngbench.trace.result import attribute_windows


def test_modules_import_no_heavy_libraries():
    code = ("import sys, ngbench.flows.ort.flow, ngbench.flows.trt.flow, ngbench.trace.ort_profile, "
            "ngbench.trace.trt_profile, ngbench.flows.onnx.export; "
            "bad = [m for m in ('torch', 'onnxruntime', 'onnx', 'tensorrt') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


# ----------------------------------------------------------------------------- known answers: parsers
def _node(name, op, ts, dur, provider="CPUExecutionProvider"):
    return {"cat": "Node", "pid": 1, "tid": 1, "ph": "X", "name": f"{name}_kernel_time", "ts": ts, "dur": dur,
            "args": {"op_name": op, "provider": provider,
                     "input_type_shape": [{"float": [1, 8, 32]}, {"int64": [3]}]}}


def _run(ts, dur):
    return {"cat": "Session", "pid": 1, "tid": 1, "ph": "X", "name": "model_run", "ts": ts, "dur": dur, "args": {}}


ORT_PROFILE = [
    {"cat": "Session", "pid": 1, "tid": 1, "ph": "X", "name": "session_initialization", "ts": 0, "dur": 90,
     "args": {}},
    _run(100, 50), _node("warm", "Add", 110, 30),                              # warm-up run: dropped
    _run(1000, 100), _node("a", "Reshape", 1010, 20), _node("b", "MatMul", 1035, 40),
    _node("c", "Softmax", 1080, 10),
    _run(2000, 80), _node("a", "Reshape", 2005, 30), _node("b", "MatMul", 2040, 25),
    _node("c", "Softmax", 2070, 5),
]


def test_ort_profile_parser_known_answer():
    from ngbench.schema import normalise_events
    from ngbench.trace.ort_profile import cpu_windows

    scopes = {"b": ["encoder.proj", "Linear"]}
    result = attribute_windows(cpu_windows(ORT_PROFILE, scopes, runs=[1, 2]), Costs({}))
    ops = normalise_events(result.ops)
    assert result.iterations["profiled_us"].tolist() == [100.0, 80.0]
    assert result.iterations["busy_us"].tolist() == [70.0, 60.0]
    assert ops["op"].tolist() == ["Reshape", "MatMul", "Softmax", IDLE_OP] * 2
    assert ops["wall_us"].tolist() == [20.0, 40.0, 10.0, 30.0, 30.0, 25.0, 5.0, 20.0]
    assert ops["seq"].tolist() == [0, 1, 2, 3] * 2
    row = ops.iloc[1]
    assert (row["module"], row["module_type"], row["node"]) == ("encoder.proj", "Linear", "b")
    assert row["input_shapes"] == [[1, 8, 32], [3]] and row["input_dtypes"] == ["float", "int64"]
    assert row["provider"] == "CPUExecutionProvider"


def _kineto_trace():
    def x(name, cat, ts, dur, **args):
        return {"ph": "X", "name": name, "cat": cat, "ts": ts, "dur": dur, "pid": 1, "tid": 7, "args": args}

    return {"baseTimeNanoseconds": 1_000_000_000 - 500_000, "traceEvents": [
        x("ProfilerStep#0", "user_annotation", 590, 130),
        x("cudaLaunchKernel", "cuda_runtime", 615, 3, correlation=1),
        x("cudaLaunchKernel", "cuda_runtime", 655, 3, correlation=2),
        x("cudaLaunchKernel", "cuda_runtime", 700, 1, correlation=3),
        x("gemm_kernel", "kernel", 620, 40, correlation=1),
        x("softmax_kernel", "kernel", 665, 25, correlation=2),
        x("copy_kernel", "kernel", 702, 3, correlation=3),
    ]}


def test_cuda_launch_window_matching_known_answer():
    from ngbench.schema import normalise_events
    from ngbench.trace.kineto import events_from_trace
    from ngbench.trace.ort_profile import cuda_windows

    trace = _kineto_trace()
    ort_events = [_run(100, 100), _node("n1", "MatMul", 110, 20, "CUDAExecutionProvider"),
                  _node("n2", "Reshape", 135, 5, "CPUExecutionProvider"),
                  _node("n3", "Softmax", 150, 20, "CUDAExecutionProvider")]
    windows, misfit = cuda_windows(ort_events, {}, [0], [events_from_trace(trace)], 1_000_000_000)
    result = attribute_windows(windows, Costs({}))
    ops = normalise_events(result.ops)
    iteration_us = result.iterations["profiled_us"].tolist()
    assert misfit == 0.0 and iteration_us == [130.0] and result.iterations["busy_us"].tolist() == [68.0]
    assert ops["op"].tolist() == ["MatMul", "Reshape", "Softmax", UNATTRIBUTED_OP, IDLE_OP]
    assert ops["host_us"].tolist() == [20.0, 5.0, 20.0, 0.0, 0.0]
    assert ops["device_us"].tolist() == [40.0, 0.0, 25.0, 3.0, 0.0]
    assert ops["wall_us"].tolist() == [50.0, 0.0, 30.0, 3.0, 47.0]
    assert ops["kernels"].tolist() == [["gemm_kernel"], [], ["softmax_kernel"], ["copy_kernel"], []]
    assert ops["provider"].tolist()[:3] == ["CUDAExecutionProvider", "CPUExecutionProvider",
                                             "CUDAExecutionProvider"]
    assert sum(ops["wall_us"]) == pytest.approx(iteration_us[0])


def test_clock_alignment_falls_back_to_window_start():
    from ngbench.trace.ort_profile import align_offsets

    offsets, misfit = align_offsets([(100, 200), (300, 350)], [(590, 720), (790, 840)], 500.0)
    assert offsets == [500.0, 500.0] and misfit == 10.0          # 350 + 500 ends 10 µs after 840: tolerated
    offsets, misfit = align_offsets([(100, 200)], [(590, 720)], 10_000.0)
    assert offsets == [490.0] and misfit == 9_480.0


def test_scopes_of_rewritten_nodes():
    from ngbench.trace.onnx_scopes import resolve_scopes

    known = {"node_Gemm_1": ["h.0.mlp.c_fc", "Conv1D"], "node_mul_3": ["h.0.mlp.act", "NewGELUActivation"],
             "node_view_2": ["h.0.attn", "GPT2Attention"]}
    producers = {"mul_3": "node_mul_3", "view_2": "node_view_2"}
    nodes = [("x_QuantizeLinear", ["mul_3"], ["x_q"]), ("node_Gemm_1_MatMul_quant", ["x_q"], ["x"]),
             ("GPT2Gelu", ["gemm_out"], ["mul_3"]), ("view_2_QuantizeLinear", ["view_2"], ["q"]),
             ("Orphan", ["nothing"], ["none"])]
    assert resolve_scopes(nodes, known, producers) == {
        "x_QuantizeLinear": ["h.0.mlp.c_fc", "Conv1D"],            # its consumer's, not its input's
        "node_Gemm_1_MatMul_quant": ["h.0.mlp.c_fc", "Conv1D"], "GPT2Gelu": ["h.0.mlp.act", "NewGELUActivation"],
        "view_2_QuantizeLinear": ["h.0.attn", "GPT2Attention"], "Orphan": ["", ""]}


# ----------------------------------------------------------------------------- ORT on a GPU: pure helpers
def test_cpu_fallback_names_the_cpu_nodes_their_types_and_share():
    """Case Study 1 on a hand-made GPU session: 2 of 5 nodes on the CPU provider take 60 of 100 µs."""
    import pandas as pd

    from ngbench.flows.ort.flow import cpu_fallback

    cuda, cpu = "CUDAExecutionProvider", "CPUExecutionProvider"
    ops = pd.DataFrame({
        "iteration": [0] * 5 + [1] * 5,
        "op": ["MatMul", "DynamicQuantizeLinear", "MatMulInteger", "MemcpyToHost", "Add"] * 2,
        "provider": [cuda, cpu, cpu, cuda, cuda] * 2,
        "wall_us": [10.0, 20.0, 40.0, 5.0, 25.0] * 2,
    })
    facts, warnings = cpu_fallback(ops, cpu_nodes=2)
    assert facts["cpu_nodes"] == 2
    assert facts["cpu_node_types"] == {"DynamicQuantizeLinear": 1, "MatMulInteger": 1}
    assert facts["cpu_wall_share"] == pytest.approx(0.6)
    (warning,) = warnings
    assert "2 nodes on the CPU provider (DynamicQuantizeLinear x1, MatMulInteger x1), 60% of the time" in warning


def test_cpu_fallback_under_the_threshold_does_not_warn():
    import pandas as pd

    from ngbench.flows.ort.flow import cpu_fallback

    ops = pd.DataFrame({"iteration": [0, 0], "op": ["Shape", "MatMul"],
                        "provider": ["CPUExecutionProvider", "CUDAExecutionProvider"], "wall_us": [1.0, 99.0]})
    facts, warnings = cpu_fallback(ops, cpu_nodes=1)
    assert facts["cpu_wall_share"] == pytest.approx(0.01) and warnings == []


def test_quantize_room_stops_in_one_line_naming_the_disk_and_tmpdir(tmp_path, monkeypatch):
    """A 7 GiB model on a disk with 2 GiB free: one line with both sizes and the way out, before any work."""
    import shutil
    from collections import namedtuple

    from ngbench.flows.ort import flow as ort_flow

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda where: usage(100 * 2**30, 98 * 2**30, 2 * 2**30))
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(ort_flow.tempfile, "tempdir", None)
    with pytest.raises(UserError) as raised:
        ort_flow.check_quantize_room(7 * 2**30, tmp_path)
    message = str(raised.value)
    assert "\n" not in message
    assert "7.0 GiB model needs about 8.8 GiB free" in message and "has 2.0 GiB" in message
    assert "TMPDIR=/dev/shm" in message
    monkeypatch.setattr(shutil, "disk_usage", lambda where: usage(100 * 2**30, 80 * 2**30, 20 * 2**30))
    ort_flow.check_quantize_room(7 * 2**30, tmp_path)      # room enough: no error


def test_onnx_bytes_counts_the_external_data(tmp_path):
    from ngbench.flows.ort.flow import onnx_bytes

    (tmp_path / "model.onnx").write_bytes(b"x" * 10)
    (tmp_path / "model.onnx.data").write_bytes(b"x" * 1000)
    (tmp_path / "other.onnx").write_bytes(b"x" * 5)
    assert onnx_bytes(str(tmp_path / "model.onnx")) == 1010


@pytest.mark.slow
def test_these_tests_pass_without_onnxruntime():
    """This module and test_trt_parsing.py, with onnxruntime, onnx, onnxscript and tensorrt unimportable."""
    blocked = ["onnxruntime", "onnx", "onnxscript", "tensorrt"]
    code = (f"import sys; sys.modules.update(dict.fromkeys({blocked!r})); import pytest; "
            "sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', '-k', 'not without_onnxruntime', "
            f"{__file__!r}, {__file__.replace('test_ort_parsing', 'test_trt_parsing')!r}]))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:]
    assert " passed" in result.stdout and "skipped" not in result.stdout, result.stdout[-1000:]


def test_nodes_on_a_runs_edges_belong_to_it_and_missing_fields_are_empty():
    """A node starting when its model_run starts and one ending when it ends are inside it; a node event
    without op_name or provider gets empty text."""
    from ngbench.trace.ort_profile import cpu_windows

    bare = {"cat": "Node", "ph": "X", "name": "bare_kernel_time", "ts": 1040, "dur": 10, "args": {}}
    events = [_run(1000, 100), _node("first", "Reshape", 1000, 20), bare, _node("last", "Softmax", 1080, 20),
              _run(2000, 10), _node("next", "Add", 2000, 10)]
    windows = cpu_windows(events, {}, runs=[0, 1])
    result = attribute_windows(windows, Costs({}))
    first = result.ops[result.ops["iteration"] == 0]
    assert first["op"].tolist() == ["Reshape", "", "Softmax", IDLE_OP]
    assert first["node"].tolist()[:3] == ["first", "bare", "last"]
    assert first["provider"].tolist()[:3] == ["CPUExecutionProvider", "", "CPUExecutionProvider"]
    assert first["wall_us"].tolist() == [20.0, 10.0, 20.0, 50.0]
    assert result.ops[result.ops["iteration"] == 1]["op"].tolist() == ["Add", IDLE_OP]


def test_nodes_of_parallel_threads_with_equal_times_keep_the_profile_order():
    """ORT's parallel executor: 20 nodes of one thread and 20 of another at the same instants, listed thread by
    thread in the profile. Ties keep the profile's order, the same on every run."""
    from ngbench.trace.ort_profile import cpu_windows

    events = [_run(0, 100)] + [_node(f"a{k}", "Add", 2 * k, 1) for k in range(20)] \
        + [_node(f"b{k}", "Mul", 2 * k, 1) for k in range(20)]
    (window,) = cpu_windows(events, {}, runs=[0])
    assert window.ops["node"].tolist() == [name for k in range(20) for name in (f"a{k}", f"b{k}")]


def test_cuda_nodes_on_the_run_start_are_kept_and_counts_must_match():
    from ngbench.trace.kineto import events_from_trace
    from ngbench.trace.ort_profile import cuda_windows

    trace = _kineto_trace()
    ort_events = [_run(100, 100), _node("n1", "MatMul", 100, 20, "CUDAExecutionProvider")]
    windows, misfit = cuda_windows(ort_events, {}, [0], [events_from_trace(trace)], 1_000_000_000)
    # Kineto's table starts at its first event (590 us past its base): ORT's 100 us lands at 10
    assert windows[0].ops["node"].tolist() == ["n1"] and windows[0].ops["ts"].tolist() == [10.0] and misfit == 0
    with pytest.raises(ValueError):       # two runs profiled, one ProfilerStep window recorded
        cuda_windows(ort_events + [_run(300, 50)], {}, [0, 1], [events_from_trace(trace)], 1_000_000_000)


def test_clock_alignment_tolerates_exactly_the_tolerance_and_needs_one_window_per_run():
    from ngbench.trace.ort_profile import CLOCK_TOLERANCE_US, align_offsets

    offsets, misfit = align_offsets([(100, 200)], [(590, 700 - CLOCK_TOLERANCE_US)], 500.0)
    assert offsets == [500.0] and misfit == CLOCK_TOLERANCE_US      # not 490, the window's start
    offsets, misfit = align_offsets([(100, 200)], [(600 + CLOCK_TOLERANCE_US + 1, 900)], 500.0)
    assert offsets == [551.0] and misfit == CLOCK_TOLERANCE_US + 1
    with pytest.raises(ValueError):
        align_offsets([(100, 200), (300, 400)], [(600, 700)], 500.0)


def test_a_profile_file_of_either_form_and_nodes_per_provider(tmp_path):
    import json

    import pandas as pd

    from ngbench.trace.ort_profile import load_profile, nodes_by_provider

    (tmp_path / "list.json").write_text(json.dumps(ORT_PROFILE))
    (tmp_path / "object.json").write_text(json.dumps({"traceEvents": ORT_PROFILE, "other": 1}))
    assert load_profile(tmp_path / "list.json") == ORT_PROFILE == load_profile(tmp_path / "object.json")
    cuda, cpu = "CUDAExecutionProvider", "CPUExecutionProvider"
    ops = pd.DataFrame({"iteration": [3, 3, 3, 3, 3, 4, 4],
                        "node": ["a", "b", "b", "c", "[idle]", "a", "d"],
                        "provider": [cuda, cuda, cuda, cpu, "", cuda, cpu]})
    assert nodes_by_provider(ops) == {cuda: 2, cpu: 1}       # iteration 3 only; b twice is one node


def test_nodes_of_a_run_that_was_not_chosen_stay_out_and_unscoped_nodes_have_no_module():
    from ngbench.trace.ort_profile import cpu_windows

    first, third = cpu_windows(ORT_PROFILE, {"b": ["encoder.proj", "Linear"]}, runs=[0, 2])
    assert first.ops["node"].tolist() == ["warm"]              # not run 1's a, b, c, which lie before run 2
    assert third.ops["node"].tolist() == ["a", "b", "c"]
    assert third.ops["module"].tolist() == ["", "encoder.proj", ""]
    assert third.ops["module_type"].tolist() == ["", "Linear", ""]


def test_cuda_windows_carry_the_records_the_rebuild_takes_the_cost_of(tmp_path):
    """Kineto's records on the iteration's thread (the step, three launches) and ORT's three nodes: with 2 us per
    runtime record and 1 per node, the rebuild takes 3 x 2 + 3 x 1 = 9 us of records off. A profile file that
    holds no events is an empty list."""
    import json

    from ngbench.trace.kineto import events_from_trace
    from ngbench.trace.ort_profile import cuda_windows, load_profile

    ort_events = [_run(100, 100), _node("n1", "MatMul", 110, 20, "CUDAExecutionProvider"),
                  _node("n2", "Reshape", 135, 5, "CPUExecutionProvider"),
                  _node("n3", "Softmax", 150, 20, "CUDAExecutionProvider")]
    windows, _ = cuda_windows(ort_events, {}, [0], [events_from_trace(_kineto_trace())], 1_000_000_000)
    result = attribute_windows(windows, Costs({"runtime": 2.0, "node": 1.0}))
    assert result.iterations["record_cost_us"].tolist() == [9.0]
    (tmp_path / "p.json").write_text(json.dumps({"otherData": {}}))
    assert load_profile(tmp_path / "p.json") == []
