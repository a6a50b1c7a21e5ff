"""Known-answer tests of the attribution on hand-made Kineto traces (times in microseconds)."""

import pytest

from ngbench.schema import IDLE_OP, UNATTRIBUTED_OP
from ngbench.trace import kineto
from ngbench.trace.attribution import busy_shares
from ngbench.trace.kineto import events_from_trace
from ngbench.trace.reconstruct import Costs
from ngbench.trace.result import attribute_windows
from ngbench.trace.torch_profiler import annotate, join_annotation


def attribute(events, device_is_host):
    """The shared attribution loop with a free profiler (the rebuilt timeline is the profiled one)."""
    return attribute_windows(kineto.windows(events, device_is_host=device_is_host), Costs({}))


def iteration_us(result):
    return result.iterations["profiled_us"].tolist()


def busy_us(result):
    return result.iterations["busy_us"].tolist()


def op(name, ts, dur, tid=1, cat="cpu_op", **args):
    return {"ph": "X", "cat": cat, "name": name, "ts": ts, "dur": dur, "pid": 1, "tid": tid, "args": args}


def launch(ts, corr, tid=1):
    return op("cudaLaunchKernel", ts, 1, tid=tid, cat="cuda_runtime", correlation=corr)


def kernel(name, ts, dur, corr, stream=7):
    return {"ph": "X", "cat": "kernel", "name": name, "ts": ts, "dur": dur, "pid": 0, "tid": stream,
            "args": {"correlation": corr, "stream": stream}}


def iteration(k, ts, dur, tid=1):
    return op(f"ngbench::iteration#{k}", ts, dur, tid=tid, cat="user_annotation")


HOST_BOUND = [
    iteration(0, 0, 100),
    op("aten::linear", 10, 20), op("aten::t", 11, 1), op("aten::addmm", 12, 16), launch(20, 1),
    kernel("sm90_gemm", 25, 10, 1),          # runs past the end of its op's host call
    op("aten::gelu", 40, 10), launch(45, 2), kernel("gelu_kernel", 46, 2, 2),
    op("aten::view", 55, 5),                 # no kernel: its wall time is GPU-idle time only
]


def by_op(result):
    return {row.op: row for row in result.ops.itertuples()}


def test_host_bound_iteration_has_exact_three_views():
    result = attribute(events_from_trace({"traceEvents": HOST_BOUND}), device_is_host=False)
    rows = by_op(result)
    assert list(result.ops["op"]) == ["aten::linear", "aten::gelu", "aten::view", IDLE_OP]
    assert (rows["aten::linear"].host_us, rows["aten::linear"].device_us, rows["aten::linear"].wall_us) == (20, 10, 25)
    assert (rows["aten::gelu"].host_us, rows["aten::gelu"].device_us, rows["aten::gelu"].wall_us) == (10, 2, 10)
    assert (rows["aten::view"].host_us, rows["aten::view"].device_us, rows["aten::view"].wall_us) == (5, 0, 5)
    assert rows[IDLE_OP].wall_us == pytest.approx(60)
    assert result.ops["wall_us"].sum() == pytest.approx(100)
    assert iteration_us(result) == [100] and busy_us(result) == [pytest.approx(12)]
    assert rows["aten::linear"].kernels == ["sm90_gemm"]


def test_device_bound_iteration_tends_to_the_device_view():
    events = [iteration(0, 0, 100), op("aten::mm", 0, 5), launch(2, 1), kernel("gemm", 5, 60, 1),
              op("aten::add", 5, 5), launch(7, 2), kernel("add_kernel", 65, 35, 2)]
    rows = by_op(attribute(events_from_trace(events), device_is_host=False))
    assert rows["aten::mm"].wall_us == pytest.approx(60 + 5)  # kernel + idle [0, 5] while host in mm
    assert rows["aten::add"].wall_us == pytest.approx(35)     # host call overlaps busy time only
    assert rows[IDLE_OP].wall_us == pytest.approx(0)


def test_concurrent_kernels_split_the_overlap_evenly():
    shares, bounds, idle = busy_shares([0.0, 5.0], [10.0, 15.0], 0.0, 20.0)
    assert list(shares) == [7.5, 7.5]
    assert sum(b - a for a, b, i in zip(bounds[:-1], bounds[1:], idle) if i) == pytest.approx(5)


def test_kernel_launched_outside_any_op_is_its_own_row():
    events = [iteration(0, 0, 50), op("aten::mm", 0, 10), launch(2, 1), kernel("gemm", 3, 5, 1),
              launch(20, 9), kernel("stray_kernel", 21, 4, 9)]
    result = attribute(events_from_trace(events), device_is_host=False)
    rows = by_op(result)
    assert rows[UNATTRIBUTED_OP].device_us == 4 and rows[UNATTRIBUTED_OP].kernels == ["stray_kernel"]
    assert result.ops["wall_us"].sum() == pytest.approx(50)


def test_cpu_run_wall_equals_host_plus_idle_row():
    events = [iteration(0, 0, 100), op("aten::linear", 10, 20), op("aten::addmm", 11, 18),
              op("aten::softmax", 40, 10), iteration(1, 100, 50), op("aten::linear", 100, 30)]
    result = attribute(events_from_trace(events), device_is_host=True)
    first = result.ops[result.ops["iteration"] == 0].set_index("op")
    assert first.loc["aten::linear", "wall_us"] == 20 and first.loc["aten::linear", "device_us"] == 20
    assert first.loc[IDLE_OP, "wall_us"] == pytest.approx(70)
    second = result.ops[result.ops["iteration"] == 1].set_index("op")
    assert second.loc[IDLE_OP, "wall_us"] == pytest.approx(20)
    assert iteration_us(result) == [100, 50] and busy_us(result) == [30, 30]


def test_other_threads_are_not_operators_of_the_iteration():
    events = [iteration(0, 0, 100), op("aten::mm", 10, 10), op("aten::add", 30, 10, tid=2)]
    result = attribute(events_from_trace(events), device_is_host=True)
    assert list(result.ops["op"]) == ["aten::mm", IDLE_OP]


def scope(path, cls, ts, dur):
    return op(f"ngbench::module {path} [{cls}]", ts, dur, cat="user_annotation")


def test_annotation_gives_innermost_module_and_joins_by_position():
    events = [iteration(0, 0, 100), scope("<root>", "Net", 0, 100), scope("norm", "LlamaRMSNorm", 10, 30),
              op("aten::pow", 12, 5, **{"Input Dims": [[1, 4]], "Input type": ["float"]}),
              op("aten::mul", 20, 5), scope("mlp", "MLP", 50, 40), scope("mlp.act", "SiLU", 60, 10),
              op("aten::silu", 61, 5), op("aten::add", 80, 5)]
    notes = annotate(events_from_trace(events))
    assert notes.to_dict("records")[0] == {"op": "aten::pow", "module": "norm", "module_type": "LlamaRMSNorm",
                                           "input_shapes": [[1, 4]], "input_dtypes": ["float"], "input_values": []}
    assert list(notes["module"]) == ["norm", "norm", "mlp.act", "mlp"]
    timed = attribute(events_from_trace([e for e in events if e["cat"] != "user_annotation"] + [iteration(0, 0, 100)]),
                      device_is_host=True).ops
    joined, unmatched = join_annotation(timed, notes)
    assert unmatched == 0
    assert list(joined["module_type"]) == ["LlamaRMSNorm", "LlamaRMSNorm", "SiLU", "MLP", ""]


def test_join_tolerates_a_different_op_sequence():
    notes = annotate(events_from_trace([iteration(0, 0, 10), op("aten::mm", 1, 1), op("aten::add", 3, 1)]))
    timed = attribute(events_from_trace([iteration(0, 0, 10), op("aten::mm", 1, 1), op("aten::item", 2, 1),
                                         op("aten::add", 3, 1)]), device_is_host=True).ops
    joined, unmatched = join_annotation(timed, notes)
    assert unmatched == 1


def test_two_gpus_busy_is_the_union_and_each_gpu_has_its_own_share():
    gpu1_kernel = {**kernel("gemm_on_gpu1", 10, 20, 2), "pid": 1}
    events = [iteration(0, 0, 100), op("aten::mm", 0, 10), launch(2, 1), kernel("gemm_on_gpu0", 5, 30, 1),
              op("aten::copy_", 10, 5), launch(11, 2), gpu1_kernel]
    result = attribute(events_from_trace(events), device_is_host=False)
    assert busy_us(result) == [pytest.approx(30)]                 # union of [5, 35] and [10, 30]
    assert result.busy_us_by_device == {"0": pytest.approx(30), "1": pytest.approx(20)}
    assert result.ops["wall_us"].sum() == pytest.approx(100)
    rows = by_op(result)
    assert rows["aten::copy_"].device_us == 20 and rows["aten::copy_"].kernels == ["gemm_on_gpu1"]


def test_a_launch_from_another_thread_is_busy_time_but_no_operators():
    events = [iteration(0, 0, 100), op("aten::mm", 0, 50), launch(10, 1), kernel("gemm", 12, 10, 1),
              launch(20, 2, tid=9), kernel("side_stream_kernel", 30, 10, 2)]
    result = attribute(events_from_trace(events), device_is_host=False)
    rows = by_op(result)
    assert rows["aten::mm"].kernels == ["gemm"] and rows["aten::mm"].device_us == 10
    assert rows[UNATTRIBUTED_OP].kernels == ["side_stream_kernel"]
    assert busy_us(result) == [pytest.approx(20)] and result.ops["wall_us"].sum() == pytest.approx(100)


def test_event_table_keeps_the_trace_base_time():
    trace = {"traceEvents": [iteration(0, 0, 10)], "baseTimeNanoseconds": 1_700_000_000_000}
    assert events_from_trace(trace).attrs["base_time_ns"] == 1_700_000_000_000
    assert events_from_trace([iteration(0, 0, 10)]).attrs["base_time_ns"] == 0.0


# LLM.int8() as bitsandbytes runs it on CUDA: an autograd Function range (MatMul8bitLt) around the
# quantization of the input and a composite op (int8_mixed_scaled_mm) around the int8 GEMM and the dequant.
LLM_INT8 = [
    iteration(0, 0, 100),
    op("MatMul8bitLt", 10, 50),
    op("aten::to", 11, 3), launch(12, 1), kernel("cast_kernel", 13, 1, 1),
    op("bitsandbytes::int8_vectorwise_quant", 15, 10), launch(20, 2), kernel("kInt8VectorQuant", 21, 2, 2),
    op("bitsandbytes::int8_mixed_scaled_mm", 26, 32),
    op("bitsandbytes::int8_linear_matmul", 27, 13), launch(30, 3), kernel("int8_gemm", 31, 5, 3),
    op("bitsandbytes::int8_mm_dequant", 41, 9), launch(45, 4), kernel("kdequant", 46, 3, 4),
    op("aten::add", 70, 5), launch(72, 5), kernel("add_kernel", 73, 1, 5),
]


def test_llm_int8_containers_give_way_to_quant_gemm_and_dequant():
    from ngbench.taxonomy import classify, load_taxonomy
    from ngbench.trace.kineto import drop_containers

    events = drop_containers(events_from_trace(LLM_INT8), load_taxonomy().is_container)
    result = attribute(events, device_is_host=False)
    ops = classify(result.ops)
    assert list(ops["op"]) == ["aten::to", "bitsandbytes::int8_vectorwise_quant", "bitsandbytes::int8_linear_matmul",
                               "bitsandbytes::int8_mm_dequant", "aten::add", IDLE_OP]
    assert list(ops["op_group"]) == ["Memory", "Quantization", "GEMM", "Quantization", "Elementwise", "Idle"]
    assert list(ops["device_us"]) == [1, 2, 5, 3, 1, 0]
    # the container's own host time (Python between its children) is outside every operator
    assert ops["wall_us"].sum() == pytest.approx(100)
    assert ops.loc[ops["op"] == "bitsandbytes::int8_linear_matmul", "wall_us"].item() == pytest.approx(13)


def test_a_container_with_no_operator_inside_stays_an_operator():
    from ngbench.taxonomy import load_taxonomy
    from ngbench.trace.kineto import drop_containers

    events = [iteration(0, 0, 50), op("MatMul8bitLt", 5, 20), launch(10, 1), kernel("fused_int8", 11, 4, 1),
              op("aten::add", 30, 5)]
    kept = drop_containers(events_from_trace(events), load_taxonomy().is_container)
    result = attribute(kept, device_is_host=False)
    assert list(result.ops["op"]) == ["MatMul8bitLt", "aten::add", IDLE_OP]
    assert result.ops["device_us"].iloc[0] == 4


@pytest.mark.slow
def test_module_scopes_leave_a_fused_fast_path_as_the_timed_pass_runs_it():
    """The annotation pass's hooks must not send nn.TransformerEncoderLayer down its composite path (which
    checks the module's own hooks): both passes then record the same operators."""
    import torch
    from torch.profiler import profile

    from ngbench.trace.torch_profiler import ModuleScopes

    layer = torch.nn.TransformerEncoderLayer(32, 2, 64, batch_first=True).eval()
    with torch.inference_mode(), profile() as prof, ModuleScopes(layer):
        layer(torch.randn(1, 4, 32))
    names = {event.name for event in prof.events()}
    assert "aten::_transformer_encoder_layer_fwd" in names
    assert f"{kineto.MODULE_PREFIX}<root> [TransformerEncoderLayer]" in names
    assert not layer._forward_hooks and not layer._forward_pre_hooks


def test_each_gpu_iteration_gets_only_the_kernels_launched_inside_it():
    """Two GPU iterations of one operator each: every window takes only its own launches, so each op has one
    kernel (30 us), nothing is unattributed, and the rows of each iteration sum to its window."""
    events = [iteration(0, 0, 100), op("aten::mm", 10, 20), launch(12, 1), kernel("gemm", 15, 30, 1),
              iteration(1, 100, 100), op("aten::mm", 110, 20), launch(112, 2), kernel("gemm", 115, 30, 2)]
    result = attribute(events_from_trace(events), device_is_host=False)
    assert list(result.ops["op"]) == ["aten::mm", IDLE_OP] * 2
    mm = result.ops[result.ops["op"] == "aten::mm"]
    assert list(mm["device_us"]) == [30, 30] and list(mm["host_us"]) == [20, 20]
    assert list(mm["wall_us"]) == [pytest.approx(35)] * 2        # kernel 30 + device idle [10, 15] in the op
    assert list(mm["kernels"]) == [["gemm"], ["gemm"]]
    assert busy_us(result) == [pytest.approx(30)] * 2
    assert list(result.kernels["iteration"]) == [0, 1] and list(result.kernels["start_us"]) == [15, 15]
    assert result.ops.groupby("iteration")["wall_us"].sum().tolist() == [pytest.approx(100)] * 2


def test_join_by_position_around_an_op_the_annotation_lacks():
    """Timed mm, item, add, relu against annotated mm, add, relu: each matched op takes the module of its own
    counterpart; the op with none gets no module."""
    notes = annotate(events_from_trace([iteration(0, 0, 50), scope("a", "Linear", 0, 5), op("aten::mm", 1, 1),
                                        scope("b", "Add", 10, 5), op("aten::add", 11, 1),
                                        scope("c", "ReLU", 20, 5), op("aten::relu", 21, 1)]))
    timed = attribute(events_from_trace([iteration(0, 0, 50), op("aten::mm", 1, 1), op("aten::item", 5, 1),
                                         op("aten::add", 11, 1), op("aten::relu", 21, 1)]), device_is_host=True).ops
    joined, unmatched = join_annotation(timed, notes)
    assert unmatched == 1
    assert list(joined["module"]) == ["a", "", "b", "c", ""]
    assert list(joined["module_type"]) == ["Linear", "", "Add", "ReLU", ""]


def test_an_op_and_its_child_starting_together_give_the_outer_op():
    events = [iteration(0, 0, 50), op("aten::linear", 10, 20), op("aten::addmm", 10, 15)]
    result = attribute(events_from_trace(events), device_is_host=True)
    assert list(result.ops["op"]) == ["aten::linear", IDLE_OP]
    assert result.ops["host_us"].tolist() == [20, 0]          # pseudo-rows have no host time
    assert result.ops["device_us"].tolist() == [20, 0]        # on the CPU the device is the host


def test_many_kernels_of_one_op_keep_their_launch_order():
    """More than 16 kernels (numpy sorts short arrays stably whatever the method): still in launch order."""
    events = [iteration(0, 0, 200), op("aten::mm", 0, 100)]
    for k in range(40):
        events += [launch(1 + k, k + 1), kernel(f"k{k}", 101 + 2 * k, 1, k + 1)]
    events += [op("aten::add", 150, 5), launch(151, 99), kernel("add_kernel", 190, 2, 99)]
    rows = by_op(attribute(events_from_trace(events), device_is_host=False))
    assert rows["aten::mm"].kernels == [f"k{k}" for k in range(40)]
    assert rows["aten::add"].kernels == ["add_kernel"] and rows[IDLE_OP].host_us == 0


def test_with_all_threads_each_launch_goes_to_the_op_of_its_own_thread():
    """Forward on thread 1 and backward on thread 2 overlap in time; each kernel belongs to its own thread's op."""
    events = [iteration(0, 0, 100), op("aten::mm", 10, 40, tid=1), launch(20, 1, tid=1), kernel("fwd_gemm", 25, 5, 1),
              op("MmBackward0", 15, 40, tid=2), launch(21, 2, tid=2), kernel("bwd_gemm", 35, 5, 2)]
    windows = kineto.windows(events_from_trace(events), all_threads=True)
    assert list(windows[0].launches.columns)[-1] == "tid" and "tid" in windows[0].ops.columns
    result = attribute_windows(windows, Costs({}))
    rows = by_op(result)
    assert rows["aten::mm"].kernels == ["fwd_gemm"] and rows["MmBackward0"].kernels == ["bwd_gemm"]
    assert (rows["aten::mm"].device_us, rows["MmBackward0"].device_us) == (5, 5)


def test_a_profile_without_iterations_is_refused_and_a_cpu_result_has_every_column():
    from ngbench.trace.result import ITERATION_COLUMNS

    with pytest.raises(RuntimeError, match=r"^the profile holds no iteration ranges \(ProfilerStep#k\)$"):
        attribute_windows([], Costs({}))
    result = attribute(events_from_trace([iteration(0, 0, 10), op("aten::mm", 1, 4)]), device_is_host=True)
    assert list(result.iterations.columns) == ITERATION_COLUMNS
    assert result.iterations[["record_cost_us", "waits"]].values.tolist() == [[0.0, 0]]
    mm = by_op(result)["aten::mm"]
    assert (mm.host_us, mm.device_us, mm.wall_us, mm.wall_profiled_us) == (4, 4, 4, 4)


def test_kernels_of_two_ops_running_interleaved_stay_in_launch_order():
    """Two ops' 20 kernels each run alternately on two streams: each op keeps its own kernels in launch order
    (an unstable sort by owner would shuffle them: more than 16 items)."""
    events = [iteration(0, 0, 200), op("aten::mm", 0, 50), op("aten::bmm", 50, 50)]
    for k in range(20):
        events += [launch(1 + k, 100 + k), kernel(f"a{k}", 100 + 2 * k, 1, 100 + k, stream=7),
                   launch(51 + k, 200 + k), kernel(f"b{k}", 101 + 2 * k, 1, 200 + k, stream=8)]
    result = attribute(events_from_trace(events), device_is_host=False)
    rows = by_op(result)
    assert rows["aten::mm"].kernels == [f"a{k}" for k in range(20)]
    assert rows["aten::bmm"].kernels == [f"b{k}" for k in range(20)]
    assert (rows["aten::mm"].device_us, rows["aten::bmm"].device_us) == (20, 20)
    kernels = result.kernels.set_index("kernel")
    assert kernels.loc["b3", "op_seq"] == 1 and kernels.loc["a3", "op_seq"] == 0
    assert (kernels.loc["b3", "stream"], kernels.loc["b3", "start_us"], kernels.loc["b3", "device_index"]) == (8, 107, "0")
    assert set(result.kernels["activity"]) == {"kernel"} and set(result.kernels["device_us"]) == {1.0}
    assert result.kernels["stream"].dtype.kind == "i" and result.kernels["op_seq"].dtype.kind == "i"
    assert sorted(result.kernels.columns) == sorted(["iteration", "op_seq", "kernel", "activity", "stream",
                                                     "device_index", "device_us", "start_us"])


def test_work_launched_outside_every_op_is_one_row_with_no_host_time():
    """An iteration with no operator at all (a replayed graph launched from Python): its kernels are one
    unattributed row, which has device and wall time but no host time, and the rest is idle."""
    events = [iteration(0, 0, 40), launch(5, 1), kernel("replayed", 10, 20, 1)]
    result = attribute(events_from_trace(events), device_is_host=False)
    assert list(result.ops["op"]) == [UNATTRIBUTED_OP, IDLE_OP]
    assert result.ops["host_us"].tolist() == [0.0, 0.0] and result.ops["device_us"].tolist() == [20.0, 0.0]
    assert result.ops["wall_us"].tolist() == [20.0, 20.0]
    assert result.ops["kernels"].tolist() == [["replayed"], []]
    assert list(result.kernels["op_seq"]) == [0]           # the unattributed row's seq


def test_sub_microsecond_ops_and_an_op_ending_with_the_iteration():
    """Host times below 1 us are kept as they are; an op that ends exactly when the iteration does is inside it."""
    events = [iteration(0, 0, 10), op("aten::view", 1, 0.25), op("aten::empty", 2, 0), op("aten::relu", 4, 6)]
    result = attribute(events_from_trace(events), device_is_host=True)
    assert list(result.ops["op"]) == ["aten::view", "aten::empty", "aten::relu", IDLE_OP]
    assert result.ops["host_us"].tolist() == [0.25, 0.0, 6.0, 0.0]
    assert result.ops["wall_us"].tolist() == [0.25, 0.0, 6.0, pytest.approx(3.75)]
    gpu = [iteration(0, 0, 10), op("aten::mm", 0.5, 0.5), launch(0.75, 1), kernel("gemm", 2, 3, 1),
           op("aten::add", 6, 4), launch(7, 2), kernel("add_kernel", 8, 2, 2)]
    result = attribute(events_from_trace(gpu), device_is_host=False)
    assert result.ops["host_us"].tolist() == [0.5, 4.0, 0.0]
    assert result.ops["wall_us"].tolist() == [pytest.approx(3.5), pytest.approx(4.0), pytest.approx(2.5)]


def test_ops_of_two_threads_starting_together_keep_the_thread_order():
    """A training step: forward and backward threads each run 20 ops starting at the same instants. Ties are
    broken by thread, the same way on every run (an unstable sort of more than 16 rows would not)."""
    events = [iteration(0, 0, 100)]
    for k in range(20):
        events += [op(f"fwd{k}", 2 * k, 1, tid=1)]
    for k in range(20):
        events += [op(f"bwd{k}", 2 * k, 1, tid=2)]
    windows = kineto.windows(events_from_trace(events), all_threads=True, extra_columns=("tid", "scope"))
    assert list(windows[0].ops.columns).count("tid") == 1 and "scope" in windows[0].ops.columns
    result = attribute_windows(windows, Costs({}))
    assert list(result.ops["op"]) == [name for k in range(20) for name in (f"fwd{k}", f"bwd{k}")] + [IDLE_OP]
    assert list(result.ops["seq"]) == list(range(41))


def test_an_op_interval_includes_its_end_and_a_stall_is_judged_by_the_spread():
    from ngbench.trace.result import stalled

    events = [iteration(0, 0, 50), op("aten::mm", 10, 5), launch(15, 1), kernel("gemm", 20, 4, 1)]
    rows = by_op(attribute(events_from_trace(events), device_is_host=False))
    assert rows["aten::mm"].kernels == ["gemm"] and UNATTRIBUTED_OP not in rows     # launched at its last us
    # median 102.5, MAD 7.5: 200 is past 102.5 + 6 x 1.4826 x 7.5 = 169.2 (and past 102.5 x 1.15)
    assert stalled([100, 110, 90, 105, 95, 200]).tolist() == [False] * 5 + [True]
    assert stalled([100, 110, 90, 105, 95, 160]).tolist() == [False] * 6


def test_given_marks_replace_the_profiler_steps():
    events = [iteration(0, 0, 100), op("aten::mm", 10, 10), op("aten::add", 30, 10), op("aten::relu", 70, 10)]
    [window] = kineto.windows(events_from_trace(events), device_is_host=True, marks=[(3, 25.0, 60.0, "1")])
    assert (window.index, window.lo, window.hi) == (0, 25.0, 60.0)
    assert list(window.ops["name"]) == ["aten::add"]


def test_a_kernel_starting_after_its_window_and_a_launch_of_a_thread_without_ops():
    """A step that does not end with a synchronise (an external training trace): the last kernel runs after the
    window, so it has device time but no share of the window. With all threads, a launch from a thread that
    has no operator in the window is unattributed."""
    events = [iteration(0, 0, 100), op("aten::mm", 90, 9), launch(92, 1), kernel("late", 105, 10, 1),
              launch(50, 2, tid=9), kernel("side", 60, 5, 2)]
    result = attribute(events_from_trace(events), device_is_host=False)
    rows = by_op(result)
    assert (rows["aten::mm"].device_us, rows["aten::mm"].wall_us) == (10, pytest.approx(9))   # idle time inside it
    assert result.ops["wall_us"].sum() == pytest.approx(100) and busy_us(result) == [pytest.approx(5)]
    threads = kineto.windows(events_from_trace(events), all_threads=True)
    rows = by_op(attribute_windows(threads, Costs({})))
    assert rows["aten::mm"].kernels == ["late"] and rows[UNATTRIBUTED_OP].kernels == ["side"]
    assert list(attribute(events_from_trace(events), device_is_host=False).iterations["block"]) == [0]


def test_a_step_recorded_as_an_operator_and_a_container_whose_child_ends_with_it():
    from ngbench.taxonomy import load_taxonomy
    from ngbench.trace.kineto import drop_containers

    events = [op("ProfilerStep#4", 0, 50), op("MatMul8bitLt", 5, 20), op("aten::mm", 10, 15), op("aten::add", 30, 5)]
    kept = drop_containers(events_from_trace(events), load_taxonomy().is_container)
    result = attribute(kept, device_is_host=True)
    assert list(result.ops["op"]) == ["aten::mm", "aten::add", IDLE_OP]   # the step is the window, not an op
    assert iteration_us(result) == [50]
