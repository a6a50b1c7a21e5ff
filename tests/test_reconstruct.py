"""Known-answer tests of the rebuilt timeline: hand-made traces with a known profiler cost per record
(op records 2 µs, runtime calls 6 µs; half paid at a record's start, half at its end). Times in µs."""

from dataclasses import replace

import pytest

from ngbench.schema import IDLE_OP
from ngbench.trace import kineto
from ngbench.trace.attribution import attribute_window
from ngbench.trace.kineto import events_from_trace
from ngbench.trace.reconstruct import Costs, rebuild
from ngbench.trace.result import attribute_windows

COSTS = Costs({"op": 2.0, "runtime": 6.0})


def x(name, cat, ts, dur, tid=1, pid=1, **args):
    return {"ph": "X", "cat": cat, "name": name, "ts": ts, "dur": dur, "pid": pid, "tid": tid, "args": args}


def step(k, ts, dur):
    return x(f"ProfilerStep#{k}", "user_annotation", ts, dur)


def op(name, ts, dur):
    return x(name, "cpu_op", ts, dur)


def call(name, ts, dur, corr=-1):
    return x(name, "cuda_runtime", ts, dur, correlation=corr)


def kernel(name, ts, dur, corr, stream=7):
    return x(name, "kernel", ts, dur, tid=stream, pid=0, correlation=corr, stream=stream)


def one_window(events, device_is_host=False):
    (window,) = kineto.windows(events_from_trace(events), device_is_host=device_is_host)
    return window


def rows_of(attributed):
    return {row.name: row for row in attributed.rows.itertuples()}


def device_spans(rebuilt, *names: str) -> list[tuple]:
    """(ts, end) of the rebuilt device activities `names`, in that order."""
    device = rebuilt.window.device.set_index("name")
    return [(device.loc[name, "ts"], device.loc[name, "end"]) for name in names]


def test_host_only_iteration_loses_the_record_costs():
    # records: step [0,100], linear [10,30] with addmm [12,28] inside, softmax [40,60]: 4 records x 2 µs
    window = one_window([step(0, 0, 100), op("aten::linear", 10, 20), op("aten::addmm", 12, 16),
                         op("aten::softmax", 40, 20)], device_is_host=True)
    rebuilt = rebuild(window, COSTS)
    assert rebuilt.window.hi - rebuilt.window.lo == pytest.approx(93)     # 100 - 7 boundaries before 100
    assert rebuilt.record_cost_us == pytest.approx(8) and rebuilt.waits == 0
    ops = rebuilt.window.ops.set_index("name")
    assert (ops.loc["aten::linear", "ts"], ops.loc["aten::linear", "end"]) == (9, 26)   # 20 - own 1 - addmm's 2
    assert (ops.loc["aten::softmax", "ts"], ops.loc["aten::softmax", "end"]) == (35, 54)
    rows = rows_of(attribute_window(rebuilt.window))
    assert rows["aten::linear"].wall_us == 17 and rows["aten::softmax"].wall_us == 19
    assert rows[IDLE_OP].wall_us == pytest.approx(93 - 36)


HOST_BOUND_GPU = [
    step(0, 0, 100),
    op("aten::mm", 10, 20), call("cudaLaunchKernel", 15, 10, corr=1), kernel("gemm", 22, 10, 1),
    op("aten::add", 50, 20), call("cudaLaunchKernel", 55, 10, corr=2), kernel("add_kernel", 62, 2, 2),
    call("cudaDeviceSynchronize", 80, 10),            # the device finished at 64: no wait
]


def test_host_bound_kernels_move_with_their_launches():
    rebuilt = rebuild(one_window(HOST_BOUND_GPU), COSTS)
    # gemm: launch moved 2 + entry 3; add_kernel: 10 + 3
    assert device_spans(rebuilt, "gemm", "add_kernel") == [(17, 27), (49, 51)]
    assert rebuilt.window.hi == pytest.approx(77) and rebuilt.waits == 0            # 100 - 23
    rows = rows_of(attribute_window(rebuilt.window))
    assert rows["aten::mm"].wall_us == pytest.approx(10 + 8)       # its kernel + idle [9, 17] inside it
    assert rows["aten::add"].wall_us == pytest.approx(2 + 8 + 3)   # kernel + idle [41, 49] and [51, 54]
    assert rows[IDLE_OP].wall_us == pytest.approx(46)
    assert rows["aten::mm"].host_us == 13 and rows["aten::add"].host_us == 13


DEVICE_BOUND = [
    step(0, 0, 260),
    op("aten::mm", 10, 10), call("cudaLaunchKernel", 12, 6, corr=1), kernel("big_gemm", 20, 200, 1),
    op("aten::add", 30, 10), call("cudaLaunchKernel", 32, 6, corr=2), kernel("add_kernel", 220, 30, 2),
    call("cudaDeviceSynchronize", 50, 205),           # waits until the device is done at 250, returns at 255
]


def test_device_bound_iteration_barely_moves_and_the_sync_waits_for_the_rebuilt_device():
    rebuilt = rebuild(one_window(DEVICE_BOUND), COSTS)
    assert device_spans(rebuilt, "big_gemm", "add_kernel") == [(15, 215), (215, 245)]   # add_kernel queued behind
    assert rebuilt.waits == 1
    # the sync returns 5 µs after the rebuilt device is done (245 + 5), then 5 µs less its end cost
    assert rebuilt.window.hi == pytest.approx(252)
    rows = rows_of(attribute_window(rebuilt.window))
    assert rows["aten::mm"].wall_us + rows["aten::add"].wall_us + rows[IDLE_OP].wall_us == pytest.approx(252)


def test_a_kernel_waiting_for_another_stream_keeps_waiting():
    events = [step(0, 0, 120),
              op("aten::mm", 10, 10), call("cudaLaunchKernel", 12, 6, corr=1), kernel("producer", 20, 40, 1),
              op("aten::add", 25, 10), call("cudaLaunchKernel", 27, 6, corr=2),
              kernel("consumer", 60, 20, 2, stream=9),   # launched at 27, started when `producer` ended
              call("cudaDeviceSynchronize", 90, 20)]
    rebuilt = rebuild(one_window(events), COSTS)
    device = rebuilt.window.device.set_index("name")
    assert (device.loc["producer", "ts"], device.loc["producer", "end"]) == (15, 55)
    assert device.loc["consumer", "ts"] == 55                       # not 60 - 13: it waits for producer


def test_a_free_profiler_rebuilds_the_profiled_timeline_exactly():
    for events in (HOST_BOUND_GPU, DEVICE_BOUND):
        window = one_window(events)
        rebuilt = rebuild(window, Costs({}))
        assert rebuilt.window.hi == window.hi
        assert rebuilt.window.device["ts"].tolist() == window.device.sort_values("ts")["ts"].tolist()


def test_result_keeps_both_views_and_drops_a_stalled_iteration():
    events = []
    for k, (start, length) in enumerate([(0, 100), (100, 100), (200, 300), (500, 100)]):
        events += [step(k, start, length), op("aten::relu", start + 10, 20)]
    result = attribute_windows(kineto.windows(events_from_trace(events), device_is_host=True), COSTS)
    assert result.iterations["stalled"].tolist() == [False, False, True, False]
    assert sorted(result.ops["iteration"].unique()) == [0, 1, 3]
    relu = result.ops[result.ops["op"] == "aten::relu"]
    assert relu["wall_profiled_us"].tolist() == [20, 20, 20] and relu["wall_us"].tolist() == [19, 19, 19]
    assert result.iterations["rebuilt_us"].tolist() == [97, 97, 297, 97]


def test_the_host_slowdown_shrinks_the_time_between_record_boundaries():
    # op records cost 2 µs (1 at each boundary); the rest of the host time ran 25% slower under the profiler
    window = one_window([step(0, 0, 100), op("aten::relu", 10, 20)], device_is_host=True)
    rebuilt = rebuild(window, Costs({"op": 2.0}, host_slowdown=0.25))
    ops = rebuilt.window.ops.set_index("name")
    assert (ops.loc["aten::relu", "ts"], ops.loc["aten::relu", "end"]) == pytest.approx((7.2, 22.4))  # 9/1.25, +19/1.25
    assert rebuilt.window.hi == pytest.approx(77.6)                                               # + 69/1.25


def test_ort_cpu_node_events_lose_their_calibrated_cost():
    from ngbench.trace.ort_profile import cpu_windows

    def node(name, op, ts, dur):
        return {"cat": "Node", "ph": "X", "name": f"{name}_kernel_time", "ts": ts, "dur": dur,
                "args": {"op_name": op, "provider": "CPUExecutionProvider"}}

    events = [{"cat": "Session", "ph": "X", "name": "model_run", "ts": 0, "dur": 100},
              node("a", "MatMul", 10, 30), node("b", "Relu", 50, 10)]
    result = attribute_windows(cpu_windows(events, {}, runs=[0]), Costs({"node": 4.0}))
    rows = result.ops.set_index("op")
    assert rows.loc["MatMul", "wall_us"] == 28 and rows.loc["Relu", "wall_us"] == 8    # less their own 2 µs
    assert rows.loc["MatMul", "host_us"] == 28 and rows.loc["MatMul", "device_us"] == 28   # the host is the device
    assert result.iterations["rebuilt_us"].tolist() == [92]                            # 100 - 2 nodes x 4 µs
    assert rows.loc["MatMul", "wall_profiled_us"] == 30


def test_host_clock_takes_a_boundary_cost_out_of_the_following_gap_never_more():
    import pandas as pd

    from ngbench.trace.reconstruct import HostClock

    # op A [1, 1.5] and op B [5, 10], 1 us per boundary: the gap after A's start (0.5) is less than its cost
    records = pd.DataFrame({"name": ["A", "B"], "kind": ["op", "op"], "ts": [1.0, 5.0], "end": [1.5, 10.0]})
    clock = HostClock(records, Costs({"op": 2.0}), lo=0.0)
    assert clock([0.0, 1.0, 1.5, 5.0, 10.0]).tolist() == [0.0, 1.0, 1.0, 3.5, 7.5]
    assert clock.total_cost == 4.0
    clock.anchor(5.0, 2.0)          # a blocking call ended at 5, rebuilt at 2: later times shift by -1.5
    assert clock([1.5, 10.0]).tolist() == [1.0, 6.0]


def test_a_sync_waits_for_its_own_work_not_for_another_threads_later_kernel():
    """cudaStreamSynchronize [30, 80.5] waited for `gemm` (ends at 80); `side`, launched by another thread at 40
    on its own stream, runs past the sync and is not what it waited for.

    Host clock (records of thread 1: step, mm, launch, sync; 1 us per op boundary, 3 per runtime boundary):
    12 -> 10, 30 -> 22, 50 -> 39, 80.5 -> 69.5, 200 -> 186 before the sync re-anchors the clock.
    gemm: its launch moved 12 - 10 + 3 = 5, so [15, 75]. The sync ends 0.5 us after the rebuilt device is done:
    75.5, so the clock after it runs 6 us later than unanchored: the iteration ends at 186 + 6 = 192.
    side: started at 50 on the profiled clock, launched by a thread the rebuild does not move: clock(50) = 39."""
    events = [step(0, 0, 200),
              op("aten::mm", 10, 10), call("cudaLaunchKernel", 12, 6, corr=1), kernel("gemm", 20, 60, 1),
              call("cudaStreamSynchronize", 30, 50.5),
              x("cudaLaunchKernel", "cuda_runtime", 40, 1, tid=9, correlation=2), kernel("side", 50, 100, 2, stream=9)]
    rebuilt = rebuild(one_window(events), COSTS)
    assert device_spans(rebuilt, "gemm", "side") == [(15, 75), (39, 139)]
    assert rebuilt.waits == 1 and rebuilt.window.hi == pytest.approx(192)
    result = attribute_windows([one_window(events)], COSTS)
    assert result.iterations[["rebuilt_us", "waits"]].values.tolist() == [[pytest.approx(192), 1]]
    assert result.ops.set_index("op").loc["[unattributed kernels]", "kernels"] == ["side"]


def test_a_cross_stream_wait_after_a_queue_of_kernels_is_kept():
    """`first` and `producer` queue on stream 7; `consumer` on stream 9 started the moment `producer` ended.

    Host clock (1 us per op boundary, 3 per runtime boundary): 10 -> 8, 14 -> 8, 27 -> 13, 120 -> 94.
    first: launch moved 10 - 8 + 3 = 5: [10, 15]; producer: moved 14 - 8 + 3 = 9, so 11, but queued behind
    first: [15, 55]; consumer: moved 27 - 13 + 3 = 17, so 43, but it waits for producer: [55, 75]."""
    events = [step(0, 0, 120),
              op("aten::mm", 8, 14), call("cudaLaunchKernel", 10, 2, corr=3), kernel("first", 15, 5, 3),
              call("cudaLaunchKernel", 14, 4, corr=1), kernel("producer", 20, 40, 1),
              op("aten::add", 25, 10), call("cudaLaunchKernel", 27, 6, corr=2), kernel("consumer", 60, 20, 2, stream=9),
              call("cudaDeviceSynchronize", 90, 20)]
    rebuilt = rebuild(one_window(events), COSTS)
    assert device_spans(rebuilt, "first", "producer", "consumer") == [
        (10, 15), (15, 55), (55, 75)]
    assert rebuilt.waits == 0 and rebuilt.window.hi == pytest.approx(94)


def test_three_iterations_are_enough_to_find_a_stalled_one():
    events = []
    for k, (start, length) in enumerate([(0, 100), (100, 100), (200, 300)]):
        events += [step(k, start, length), op("aten::relu", start + 10, 20)]
    result = attribute_windows(kineto.windows(events_from_trace(events), device_is_host=True), COSTS)
    assert result.iterations["stalled"].tolist() == [False, False, True]
    assert sorted(result.ops["iteration"].unique()) == [0, 1]
    two = attribute_windows(kineto.windows(events_from_trace(events[:4] + [step(2, 200, 10)]), device_is_host=True),
                            COSTS)
    assert two.iterations["stalled"].tolist() == [False, False, False]


def test_costs_of_a_record_kind_and_a_free_profiler():
    assert COSTS.of("runtime") == 6.0 and COSTS.of("node") == 0.0 and type(COSTS.of("op")) is float
    assert Costs({"op": 0.0}).is_free and not Costs({}, host_slowdown=0.1).is_free and not COSTS.is_free


def test_two_waits_work_after_another_threads_kernel_and_a_sync_ending_the_iteration():
    """Two syncs wait; another thread's kernel is rebuilt between them; the second sync ends when the step does.

    Host clock (1 us per op boundary, 3 per runtime boundary), before any re-anchoring: 12 -> 10, 30 -> 22,
    50 -> 39, 80.5 -> 69.5, 92 -> 77, 110 -> 88, 200 -> 175.
    gemm: moved 12 - 10 + 3 = 5: [15, 75]; sync 1 returns 0.5 after it: 75.5, so later times run +6.
    side (thread 9, on the profiled clock): clock(50) = 39: [39, 49].
    add_kernel: its launch at 92 -> 83, moved 12: 88, after gemm on stream 7: [88, 187.5]; sync 2 returns at
    188 = 175 + 13: the iteration, which ends with it, ends at 188."""
    events = [step(0, 0, 200),
              op("aten::mm", 10, 10), call("cudaLaunchKernel", 12, 6, corr=1), kernel("gemm", 20, 60, 1),
              call("cudaStreamSynchronize", 30, 50.5),
              x("cudaLaunchKernel", "cuda_runtime", 40, 1, tid=9, correlation=2), kernel("side", 50, 10, 2, stream=9),
              op("aten::add", 90, 10), call("cudaLaunchKernel", 92, 4, corr=3), kernel("add_kernel", 100, 99.5, 3),
              call("cudaStreamSynchronize", 110, 90)]
    rebuilt = rebuild(one_window(events), COSTS)
    assert device_spans(rebuilt, "gemm", "side", "add_kernel") == [
        (15, 75), (39, 49), (88, 187.5)]
    assert rebuilt.waits == 2 and rebuilt.window.hi == pytest.approx(188)


def test_a_copy_that_returns_right_after_its_device_copy_waited_for_it():
    """cudaMemcpy [20, 60] whose copy ends at 59.5 blocked until then (a copy ending later did not)."""
    events = [step(0, 0, 100), op("aten::copy_", 10, 50), call("cudaMemcpy", 20, 40, corr=1),
              x("Memcpy DtoH", "gpu_memcpy", 30, 29.5, tid=7, pid=0, correlation=1, stream=7)]
    rebuilt = rebuild(one_window(events), COSTS)
    assert rebuilt.waits == 1
    assert rebuilt.window.device["ts"].tolist() == [25]          # launch moved 20 - 18 + 3
    later = [e if e["name"] != "Memcpy DtoH" else {**e, "dur": 32} for e in events]   # ends at 62: still running
    assert rebuild(one_window(later), COSTS).waits == 0


def test_a_kernel_rebuilt_to_start_before_the_iteration_counts_from_its_start():
    """A launch at 1.5 us with a 3 us entry cost moves its kernel 4.5 us earlier, to -2.5: the busy time is counted
    inside the window only, so the rows still sum to the rebuilt iteration (42.5 us)."""
    events = [step(0, 0, 50), op("aten::mm", 1, 9), call("cudaLaunchKernel", 1.5, 2, corr=1), kernel("gemm", 2, 10, 1)]
    result = attribute_windows([one_window(events)], COSTS)
    assert result.iterations["rebuilt_us"].tolist() == [pytest.approx(42.5)]
    rows = result.ops.set_index("op")
    assert rows.loc["aten::mm", "wall_us"] == pytest.approx(7.5) and rows.loc[IDLE_OP, "wall_us"] == pytest.approx(35)
    assert result.ops["wall_us"].sum() == pytest.approx(42.5)


def test_kept_block_traces_rebuild_offline_to_the_runs_own_ratio(tmp_path):
    """A run with save_trace=true and NGBENCH_KEEP_BLOCK_TRACES=1 keeps one raw trace per profiled block;
    benchmarks/rebuild_costs.py rebuilds them with the run's own prices to its summary's reconstructed_over_clean,
    and with other prices to another ratio (free prices: the profiled timeline, slower than the rebuilt one)."""
    import json
    import subprocess
    import sys

    from tests.conftest import ROOT, TINY, run_cli

    run_dir = tmp_path / "run"
    done = run_cli("model=gpt2", *TINY, "blocks=3", "iters=3", "profile_iters=3", "save_trace=true", f"hydra.run.dir={run_dir}",
                   env={"NGBENCH_KEEP_BLOCK_TRACES": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(p.name for p in run_dir.glob("trace-block*.json")) == [f"trace-block{k}.json" for k in range(3)]
    out = tmp_path / "rows.json"
    script = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "rebuild_costs.py"), str(run_dir),
                             "--costs", "op=0,runtime=0,driver=0", "--json", str(out)],
                            capture_output=True, text=True, timeout=300)
    assert script.returncode == 0, script.stderr[-2000:]
    row, = json.loads(out.read_text())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert row["run's own"] == pytest.approx(summary["reconciliation"]["reconstructed_over_clean"], rel=1e-9)
    assert row["op=0,runtime=0,driver=0"] > row["run's own"]


def test_each_block_is_priced_by_its_probe_scale():
    """Two blocks of two host-only iterations, each a step and a relu (two op records at 2 µs): block 1, probed
    twice as slow as at calibration, pays twice the price a record and block 0 (scale 0.5) half, both in what is
    priced and in what the rebuild removes; a block the scale does not name pays the calibrated price, and the
    slowdown is never scaled."""
    events = []
    for k, start in enumerate((0, 100, 200, 300)):
        events += [step(k, start, 100), op("aten::relu", start + 10, 20)]
    windows = kineto.windows(events_from_trace(events), device_is_host=True)
    plain = attribute_windows(windows, COSTS, [0, 0, 1, 1]).iterations
    scaled = attribute_windows(windows, replace(COSTS, block_scale={0: 0.5, 1: 2.0}), [0, 0, 1, 1]).iterations
    assert (scaled["record_cost_us"] / plain["record_cost_us"]).tolist() == pytest.approx([0.5, 0.5, 2.0, 2.0])
    removed = plain["profiled_us"] - plain["rebuilt_us"]
    assert (scaled["profiled_us"] - scaled["rebuilt_us"]).tolist() == pytest.approx((removed * [0.5, 0.5, 2, 2]).tolist())
    assert COSTS.for_block(3) is COSTS
    assert replace(COSTS, block_scale={0: 2.0}).for_block(1).per_kind_us == COSTS.per_kind_us
    assert replace(COSTS, block_scale={0: 2.0}).for_block(0).host_slowdown == COSTS.host_slowdown
