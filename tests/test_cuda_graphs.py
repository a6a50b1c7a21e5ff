"""CUDA graphs: replayed kernels given back to the operators that captured them, on hand-made traces in
Kineto's format (a capture call: cudaStreamBeginCapture, launches that run nothing, cudaStreamEndCapture, the
first replay; then timed iterations in which one cudaGraphLaunch correlation holds every replayed kernel)."""

import pytest
from test_attribution import op

from ngbench.schema import GRAPH_REPLAY_OP, IDLE_OP, normalise_events
from ngbench.summary import coverage
from ngbench.taxonomy import classify
from ngbench.trace import kineto
from ngbench.trace.cuda_graphs import captured_graphs, match_replay, split_graph_window
from ngbench.trace.inductor_code import compiled_events
from ngbench.trace.kineto import events_from_trace
from ngbench.trace.reconstruct import Costs
from ngbench.trace.result import attribute_windows
from ngbench.trace.torch_profiler import annotate

GEMM = "sm90_xmma_gemm_f16f16_f16f32_f32_tn_n_tilesize128x128x64_warpgroupsize1x1x1_execute_segment_k_off_kernel__5x_cublas"
ADD, SOFTMAX = "triton_poi_fused_add_0", "triton_per_fused__softmax_1"
COPY = "void at::native::(anonymous namespace)::multi_tensor_apply_kernel<at::native::(anonymous namespace)::CopyFunctor>"


def call(name, ts, dur, corr, cat="cuda_runtime"):
    return op(name, ts, dur, cat=cat, correlation=corr)


def device(name, ts, dur, corr, node, cat="kernel"):
    return {"ph": "X", "cat": cat, "name": name, "ts": ts, "dur": dur, "pid": 0, "tid": 7,
            "args": {"correlation": corr, "stream": 7, "graph id": 1, "graph node id": node}}


def replay(t0, corr, extra=()):
    """The device side of one replay of the captured graph: add, (mm: memset + gemm), softmax."""
    return [device(ADD, t0, 5, corr, 1), device("Memset (Device)", t0 + 6, 1, corr, 2, cat="gpu_memset"),
            device(GEMM, t0 + 8, 12, corr, 3), device(SOFTMAX, t0 + 21, 4, corr, 4), *extra]


CAPTURE = [
    op("ProfilerStep#0", 0, 1000, cat="user_annotation"), op("Torch-Compiled Region: 0/0", 5, 900),
    call("cudaStreamBeginCapture", 10, 2, 100),
    op(ADD, 20, 10), call("cuLaunchKernel", 22, 3, 101, cat="cuda_driver"),
    op("aten::mm", 40, 20), call("cudaMemsetAsync", 42, 1, 102), call("cudaLaunchKernel", 45, 3, 103),
    call("cuLaunchKernel", 46, 1, 108, cat="cuda_driver"),      # the runtime launch's own driver call: one node
    op(SOFTMAX, 70, 10), call("cuLaunchKernel", 72, 2, 104, cat="cuda_driver"),
    call("cudaStreamEndCapture", 90, 5, 105), call("cudaGraphInstantiateWithFlags", 100, 50, 106),
    call("cudaGraphLaunch", 200, 10, 107), *replay(220, 107),
]


def timed_iteration(k, t0, extra=()):
    corr = 1000 + 10 * k
    return [op(f"ProfilerStep#{k}", t0, 300, cat="user_annotation"), op("Torch-Compiled Region: 0/0", t0 + 5, 250),
            op("aten::_foreach_copy_", t0 + 10, 10, **{"Input Dims": [[[4, 4]], [[4, 4]]]}),
            call("cudaLaunchKernel", t0 + 12, 2, corr), device(COPY, t0 + 15, 2, corr, 0),
            call("cudaGraphLaunch", t0 + 30, 10, corr + 1), *replay(t0 + 45, corr + 1, extra),
            call("cudaDeviceSynchronize", t0 + 41, 40, corr + 2)]


@pytest.fixture
def graphs():
    return captured_graphs(events_from_trace({"traceEvents": CAPTURE}))


def test_capture_trace_gives_each_node_its_operator_and_kernel(graphs):
    (graph,) = graphs
    assert [(s.op, s.kernel) for s in graph.slots] == [
        (ADD, ADD), ("aten::mm", "Memset (Device)"), ("aten::mm", GEMM), (SOFTMAX, SOFTMAX)]
    assert graph.slots[1].op_index == graph.slots[2].op_index != graph.slots[0].op_index


def attribute(trace, graphs):
    """What the inductor flow does with a timed trace: the operator and attribution sides of the split."""
    events = events_from_trace({"traceEvents": trace})
    windows = [split_graph_window(w, graphs) for w in kineto.windows(events, compiled_events(events, graphs))]
    result = attribute_windows(windows, Costs({}))
    return classify(normalise_events(result.ops)), result.kernels, events


def test_replayed_kernels_reach_the_operators_that_captured_them(graphs):
    ops, kernels, events = attribute(timed_iteration(0, 0) + timed_iteration(1, 400), graphs)
    first = ops[ops["iteration"] == 0]
    assert first["op"].tolist() == ["aten::_foreach_copy_", ADD, "aten::mm", SOFTMAX, IDLE_OP]
    device_us = dict(zip(first["op"], first["device_us"]))
    assert device_us == {"aten::_foreach_copy_": 2, ADD: 5, "aten::mm": 13, SOFTMAX: 4, IDLE_OP: 0}
    assert set(first.loc[first["op"] == "aten::mm", "op_group"]) == {"GEMM"}
    owners = kernels[kernels["iteration"] == 1].set_index("kernel")["op_seq"].to_dict()
    assert owners[GEMM] == owners["Memset (Device)"] == 2 and owners[SOFTMAX] == 3
    assert coverage(ops)["device_pct"] == pytest.approx(100.0)
    # Σ wall = the iteration, as without graphs
    assert first["wall_us"].sum() == pytest.approx(300.0)
    # the annotation pass sees the same operators, so its shapes join by position
    assert annotate(compiled_events(events, graphs))["op"].tolist() == first["op"].tolist()[:-1]


def test_without_a_capture_the_replay_is_one_unclaimed_row():
    ops, _, _ = attribute(timed_iteration(0, 0), [])
    assert ops["op"].tolist() == ["aten::_foreach_copy_", GRAPH_REPLAY_OP, IDLE_OP]
    assert ops.loc[ops["op"] == GRAPH_REPLAY_OP, "op_group"].item() == "Other"   # not GEMM by its first kernel
    result = coverage(ops)
    assert result["device_pct"] == pytest.approx(100 * 2 / 24)
    assert result["graph_replay_ms"] == pytest.approx(0.022)


def test_a_kernel_the_capture_did_not_show_stays_unclaimed(graphs):
    extra = [device("some_other_kernel", 80, 6, 1001, 5)]
    ops, _, _ = attribute(timed_iteration(0, 0, extra), graphs)
    assert ops["op"].tolist() == ["aten::_foreach_copy_", ADD, "aten::mm", SOFTMAX, GRAPH_REPLAY_OP, IDLE_OP]
    assert coverage(ops)["device_pct"] == pytest.approx(100 * 24 / 30)


def test_match_replay_needs_most_kernels_to_agree(graphs):
    assert [s.op for s in match_replay([ADD, "Memset (Device)", GEMM, SOFTMAX], graphs)] == \
        [ADD, "aten::mm", "aten::mm", SOFTMAX]
    assert match_replay(["a", "b", "c", SOFTMAX], graphs) == [None] * 4       # 1 of 4: another graph


def test_capture_without_markers_gives_no_graph():
    plain = [e for e in CAPTURE if "Capture" not in e["name"]]
    assert captured_graphs(events_from_trace({"traceEvents": plain})) == []
