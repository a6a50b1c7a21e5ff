"""Known-answer tests of summary.json's arithmetic (ngbench.summary) on hand-made op, kernel and iteration
tables: every figure below was worked out by hand from the rows, so a swapped column, a wrong divisor or an
inverted ratio changes a number that is asserted."""

import math

import pandas as pd
import pytest

from ngbench.schema import GRAPH_REPLAY_OP, IDLE_OP, UNATTRIBUTED_OP
from ngbench.summary import (
    coverage,
    coverage_warnings,
    gemm_kinds,
    group_totals,
    halves,
    kernel_class_totals,
    reconciliation,
    roofline_block,
    roofline_totals,
    t_975,
    t_interval,
    warnings_for,
)

# Two iterations of a GEMM, an elementwise op and idle time; host, device and wall all differ, so a view
# that reads another view's column gives another answer.
#   iteration, op, group, kind, host, device, wall, wall_profiled (us)
OPS = pd.DataFrame.from_records([
    (0, "aten::mm", "GEMM", "matmul", 10.0, 30.0, 40.0, 50.0),
    (0, "aten::add", "Elementwise", "", 20.0, 5.0, 20.0, 30.0),
    (0, IDLE_OP, "Idle", "", 0.0, 0.0, 40.0, 20.0),
    (1, "aten::conv2d", "GEMM", "conv", 10.0, 30.0, 60.0, 50.0),
    (1, "aten::add", "Elementwise", "", 20.0, 5.0, 20.0, 30.0),
    (1, IDLE_OP, "Idle", "", 0.0, 0.0, 20.0, 20.0),
], columns=["iteration", "op", "op_group", "kind", "host_us", "device_us", "wall_us", "wall_profiled_us"])


def test_group_totals_per_view_per_inference():
    groups = group_totals(OPS)
    gemm, elementwise, idle = groups["GEMM"], groups["Elementwise"], groups["Idle"]
    # sums over both iterations: GEMM host 20, device 60, wall 100, profiled 100, paper 80 (host + device)
    assert gemm["wall_ms"] == pytest.approx(0.050) and gemm["wall_profiled_ms"] == pytest.approx(0.050)
    assert gemm["host_ms"] == pytest.approx(0.010) and gemm["device_ms"] == pytest.approx(0.030)
    assert gemm["paper_ms"] == pytest.approx(0.040)
    # totals: host 60, device 70, wall 200, profiled 200, paper 130 (idle counts 0 in the paper's view)
    assert gemm["wall_pct"] == pytest.approx(50.0) and gemm["wall_profiled_pct"] == pytest.approx(50.0)
    assert gemm["host_pct"] == pytest.approx(100 * 20 / 60) and gemm["device_pct"] == pytest.approx(100 * 60 / 70)
    assert gemm["paper_pct"] == pytest.approx(100 * 80 / 130)
    assert elementwise["host_pct"] == pytest.approx(100 * 40 / 60)
    assert elementwise["device_pct"] == pytest.approx(100 * 10 / 70)
    assert elementwise["wall_profiled_pct"] == pytest.approx(30.0)
    assert idle["wall_pct"] == pytest.approx(30.0) and idle["paper_ms"] == 0 and idle["paper_pct"] == 0
    assert (gemm["ops"], elementwise["ops"], idle["ops"]) == (1, 1, 1)
    # GEMM's wall share per iteration is 40% and 60%: mean 50, s = 10*sqrt(2), t(0.975, 1) = 12.7062
    lo, hi = gemm["wall_pct_ci95"]
    assert (lo, hi) == (pytest.approx(50 - 127.062, abs=1e-3), pytest.approx(50 + 127.062, abs=1e-3))
    assert elementwise["wall_pct_ci95"] == [pytest.approx(20.0), pytest.approx(20.0)]


def test_group_totals_where_the_device_is_the_host_count_host_time_once():
    groups = group_totals(OPS, device_is_host=True)
    assert groups["GEMM"]["paper_ms"] == pytest.approx(0.010)
    assert groups["GEMM"]["paper_pct"] == pytest.approx(100 * 20 / 60)


def test_a_group_absent_from_an_iteration_has_a_zero_share_there():
    ops = pd.DataFrame({"iteration": [0, 0, 1], "op": ["aten::mm", "aten::cat", "aten::mm"],
                        "op_group": ["GEMM", "Memory", "GEMM"], "host_us": [60.0, 40.0, 100.0],
                        "device_us": [60.0, 40.0, 100.0], "wall_us": [60.0, 40.0, 100.0],
                        "wall_profiled_us": [60.0, 40.0, 100.0]})
    memory = group_totals(ops)["Memory"]
    # shares 40% and 0%: mean 20, s = 20 sqrt(2), half-width t(0.975, 1) x 20 = 254.124
    assert memory["wall_pct_ci95"] == [pytest.approx(20 - 254.124, abs=1e-3), pytest.approx(20 + 254.124, abs=1e-3)]
    assert memory["wall_pct"] == pytest.approx(20.0) and memory["ops"] == 0     # 1 instance over 2 iterations


def test_a_view_with_no_time_has_zero_shares():
    ops = OPS.assign(device_us=0.0)
    assert group_totals(ops)["GEMM"]["device_pct"] == 0.0


def test_gemm_kinds_per_inference():
    assert gemm_kinds(OPS) == {"conv": pytest.approx(0.030), "matmul": pytest.approx(0.020)}


# iterations of two blocks; the stalled one would change every figure if it were kept
ITERATIONS = pd.DataFrame.from_records([
    # block, stalled, rebuilt, profiled, busy, busy_profiled, record_cost, waits (us)
    (0, False, 1000.0, 1500.0, 500.0, 600.0, 10.0, 1),
    (0, False, 1200.0, 1700.0, 600.0, 700.0, 20.0, 2),
    (0, True, 9000.0, 9000.0, 9000.0, 9000.0, 900.0, 9),
    (1, False, 1100.0, 1300.0, 550.0, 650.0, 30.0, 3),
], columns=["block", "stalled", "rebuilt_us", "profiled_us", "busy_us", "busy_profiled_us", "record_cost_us",
            "waits"])
CLEAN_BLOCKS_US = [[1000.0, 990.0, 1010.0], [1250.0, 1250.0]]


def test_reconciliation_ratios_are_medians_over_blocks_of_each_block_against_its_clean_median():
    recon = reconciliation(ITERATIONS, CLEAN_BLOCKS_US)
    # block 0: clean 1000, rebuilt median 1100, profiled 1600; block 1: clean 1250, rebuilt 1100, profiled 1300
    assert recon["by_block"] == [
        {"block": 0, "clean_ms": 1.0, "rebuilt_ms": 1.1, "profiled_ms": 1.6,
         "reconstructed_over_clean": pytest.approx(1.1), "profiled_over_clean": pytest.approx(1.6)},
        {"block": 1, "clean_ms": 1.25, "rebuilt_ms": 1.1, "profiled_ms": 1.3,
         "reconstructed_over_clean": pytest.approx(0.88), "profiled_over_clean": pytest.approx(1.04)}]
    assert recon["reconstructed_over_clean"] == pytest.approx((1.1 + 0.88) / 2)
    assert recon["profiled_over_clean"] == pytest.approx((1.6 + 1.04) / 2)
    assert recon["clean_drift"] == pytest.approx(0.25)
    assert recon["device_busy_share"] == pytest.approx(1650 / 3300)
    assert recon["device_busy_share_profiled"] == pytest.approx(1950 / 4500)
    assert (recon["stalled_iterations"], recon["profiled_iterations"]) == (1, 4)
    assert recon["record_cost_ms"] == pytest.approx(0.020) and recon["blocking_waits"] == 2


def test_reconciliation_carries_each_blocks_host_probe():
    """The host's speed probed before each profiled block goes with that block; a block left out (no clean
    times) takes its probe with it."""
    probes = [{"host_probe_us": 2.0, "host_probe_mean_us": 2.2}, {"host_probe_us": 3.5, "host_probe_mean_us": 3.6}]
    recon = reconciliation(ITERATIONS, CLEAN_BLOCKS_US, probes)
    assert [(b["host_probe_us"], b["host_probe_mean_us"]) for b in recon["by_block"]] == [(2.0, 2.2), (3.5, 3.6)]
    assert [b.get("host_probe_us") for b in reconciliation(ITERATIONS, [[], [1250.0]], probes)["by_block"]] == [3.5]
    assert "host_probe_us" not in reconciliation(ITERATIONS, CLEAN_BLOCKS_US)["by_block"][0]


def test_reconciliation_skips_a_block_without_iterations_or_clean_times():
    recon = reconciliation(ITERATIONS, [[1000.0], []])
    assert [b["block"] for b in recon["by_block"]] == [0]
    assert recon["clean_drift"] == 0.0
    first_empty = reconciliation(ITERATIONS, [[], [1250.0]])
    assert [b["block"] for b in first_empty["by_block"]] == [1]
    assert first_empty["reconstructed_over_clean"] == pytest.approx(0.88)
    empty = reconciliation(ITERATIONS.iloc[0:0], [])
    assert math.isnan(empty["reconstructed_over_clean"]) and math.isnan(empty["profiled_over_clean"])
    assert math.isnan(empty["clean_drift"]) and empty["record_cost_ms"] == 0.0 and empty["blocking_waits"] == 0


def test_warnings_name_each_problem_with_its_figure():
    recon = {"reconstructed_over_clean": 1.062, "stalled_iterations": 1, "profiled_iterations": 4,
             "clean_drift": 0.25}
    assert warnings_for(recon, unmatched_ops=3) == [
        "the rebuilt timeline is +6.2% off the clean latency (reconstructed/clean): wall shares carry that much "
        "unexplained time",
        "1 of 4 profiled iterations stalled and were left out",
        "clean latency drifted 25% between blocks (a noisy host)",
        "3 ops of the timed pass had no counterpart in the annotation pass (no module/shape for them)"]
    quiet = {"reconstructed_over_clean": 0.96, "stalled_iterations": 0, "profiled_iterations": 4,
             "clean_drift": 0.10}
    assert warnings_for(quiet, unmatched_ops=0) == []
    assert len(warnings_for({**quiet, "reconstructed_over_clean": 0.94}, 0)) == 1


def test_t_interval_known_answers():
    lo, hi = t_interval([1.0, 2.0, 3.0])          # mean 2, s = 1, t(0.975, 2) = 4.302653
    assert (lo, hi) == (pytest.approx(2 - 4.302653 / 3 ** 0.5), pytest.approx(2 + 4.302653 / 3 ** 0.5))
    assert t_interval([7.0]) == [7.0, 7.0]
    assert all(math.isnan(v) for v in t_interval([]))


def test_t_975_is_scipys_quantile_without_importing_scipy():
    """The written-out quantiles (1-30 degrees of freedom) and the expansion beyond against scipy's, to 2e-8."""
    import numpy as np
    from scipy.special import stdtrit

    df = np.array([*range(1, 200), 500, 1000, 10**4, 10**6])
    assert t_975(df) == pytest.approx(stdtrit(df, 0.975), rel=2e-8)
    assert t_975(np.arange(1, 31)) == pytest.approx(stdtrit(np.arange(1, 31), 0.975), rel=1e-15)


def test_coverage_leaves_out_unattributed_and_replayed_device_time():
    ops = pd.DataFrame({"iteration": [0, 0, 0, 1], "op": ["aten::mm", UNATTRIBUTED_OP, GRAPH_REPLAY_OP, "aten::mm"],
                        "device_us": [40.0, 20.0, 10.0, 30.0]})
    result = coverage(ops)
    assert result == {"device_pct": pytest.approx(70.0), "unattributed_ms": pytest.approx(0.010),
                      "graph_replay_ms": pytest.approx(0.005)}
    assert coverage_warnings(result) == [
        "30.0% of device time reached no operator (0.005 ms of CUDA-graph replays, 0.010 ms launched outside "
        "every operator per inference)"]
    assert coverage(ops.assign(device_us=0.0))["device_pct"] == 100.0
    assert coverage_warnings({"device_pct": 99.0, "unattributed_ms": 0.0, "graph_replay_ms": 0.0}) == []
    assert len(coverage_warnings({"device_pct": 98.9, "unattributed_ms": 0.0, "graph_replay_ms": 0.0})) == 1


def test_kernel_classes_in_all_and_inside_each_group():
    kernels = pd.DataFrame({"op_group": ["GEMM", "GEMM", "Elementwise", None],
                            "kernel_class": ["gemm", "layout", "elementwise", "other"],
                            "device_us": [60.0, 20.0, 15.0, 10.0]})
    result = kernel_class_totals(kernels, iterations=2)
    assert result["device_ms"] == pytest.approx(0.0525)
    assert result["by_class_ms"] == {"gemm": pytest.approx(0.030), "layout": pytest.approx(0.010),
                                     "elementwise": pytest.approx(0.0075), "other": pytest.approx(0.005)}
    assert list(result["by_class_ms"]) == ["gemm", "layout", "elementwise", "other"]
    assert result["gemm_class_pct"] == pytest.approx(100 * 60 / 105)
    gemm = result["groups"]["GEMM"]
    assert gemm["device_ms"] == pytest.approx(0.040) and gemm["own_classes"] == ["gemm", "conv", "attention"]
    assert gemm["by_class_ms"] == {"gemm": pytest.approx(0.030), "layout": pytest.approx(0.010)}
    assert gemm["other_class_ms"] == {"layout": pytest.approx(0.010)} and gemm["other_class_pct"] == pytest.approx(25)
    assert result["groups"]["Elementwise"]["other_class_ms"] == {}
    assert result["groups"]["Other"]["other_class_ms"] == {} and result["groups"]["Other"]["other_class_pct"] == 0
    assert kernel_class_totals(kernels.iloc[0:0], iterations=2) == {}


ROOFLINE_OPS = pd.DataFrame({"op_group": ["GEMM", "GEMM", "GEMM", "Elementwise"],
                             "device_us": [100.0, 100.0, 0.0, 50.0],
                             "bytes": [1e6, float("nan"), 5e9, float("nan")],
                             "flops": [2e9, 2e9, 5e12, float("nan")]})


def test_roofline_per_group_over_the_operators_whose_bytes_and_flops_are_known():
    gemm = roofline_totals(ROOFLINE_OPS, iterations=2, bandwidth_gbs=100.0, peak_tflops=100.0)["GEMM"]
    # bytes known over 100 us (1e6 B: 10 GB/s), FLOPs over 200 us (4e9: 20 TFLOP/s); the idle op is left out
    assert gemm == {"device_ms": pytest.approx(0.1), "gbytes": pytest.approx(0.0005), "gflops": pytest.approx(2.0),
                    "bytes_known_pct": pytest.approx(50.0), "flops_known_pct": pytest.approx(100.0),
                    "achieved_gbs": pytest.approx(10.0), "memory_roofline_pct": pytest.approx(10.0),
                    "achieved_tflops": pytest.approx(20.0), "compute_peak_pct": pytest.approx(20.0)}
    elementwise = roofline_totals(ROOFLINE_OPS, iterations=2, bandwidth_gbs=None, peak_tflops=None)["Elementwise"]
    assert elementwise["achieved_gbs"] is None and elementwise["memory_roofline_pct"] is None
    assert elementwise["achieved_tflops"] is None and elementwise["compute_peak_pct"] is None
    assert elementwise["bytes_known_pct"] == 0.0


def test_roofline_block_takes_the_measured_bandwidth_before_the_spec():
    measured = roofline_block(ROOFLINE_OPS, 2, "cpu", "fp32", "", {"bandwidth": {"gbs": 50.0}})
    assert measured["bandwidth_gbs"] == 50.0 and measured["bandwidth_source"] == "measured"
    assert measured["spec"] is None and measured["groups"]["GEMM"]["memory_roofline_pct"] == pytest.approx(20.0)
    bare = roofline_block(ROOFLINE_OPS, 2, "cpu", "fp32", "", {})
    assert bare["bandwidth_gbs"] is None and bare["bandwidth_source"] is None


def test_roofline_block_on_an_h100_takes_its_spec_and_the_precisions_peak():
    block = roofline_block(ROOFLINE_OPS, 2, "cuda:0", "fp16", "", {"gpu": "NVIDIA H100 80GB HBM3"})
    assert (block["device"], block["peak"], block["peak_tflops"]) == ("H100 SXM", "fp16_tensor", 989.4)
    assert block["bandwidth_gbs"] == 3350 and block["bandwidth_source"] == "spec"
    gemm = block["groups"]["GEMM"]   # 10 GB/s of 3350, 20 TFLOP/s of 989.4
    assert gemm["memory_roofline_pct"] == pytest.approx(100 * 10 / 3350)
    assert gemm["compute_peak_pct"] == pytest.approx(100 * 20 / 989.4)
    int8 = roofline_block(ROOFLINE_OPS, 2, "cuda:0", "fp16", "int8", {"gpu": "NVIDIA H100 80GB HBM3"})
    assert (int8["peak"], int8["peak_tflops"]) == ("int8_tensor", 1978.9)
    assert roofline_block(ROOFLINE_OPS, 2, "cpu", "fp32", "", {"gpu": "NVIDIA H100 80GB HBM3"})["spec"] is None


def test_inside_operators_gathers_the_blocks_of_one_run():
    from ngbench.summary import inside_operators

    ops = ROOFLINE_OPS.assign(iteration=[0, 0, 1, 1], op=["aten::mm", "aten::mm", "aten::mm", UNATTRIBUTED_OP])
    kernels = pd.DataFrame({"op_group": ["GEMM", "Elementwise"], "kernel_class": ["gemm", "other"],
                            "kernel": ["sm90_gemm", "mystery_kernel"], "kernel_rule": ["gemm", ""],
                            "device_us": [200.0, 50.0]})
    inside = inside_operators(ops, kernels, "cuda:0", "fp16", "", {"gpu": "NVIDIA H100 80GB HBM3"})
    assert set(inside) == {"kernel_classes", "unmapped_kernels", "roofline", "coverage"}
    assert inside["unmapped_kernels"] == {"mystery_kernel": 1}
    assert inside["kernel_classes"]["device_ms"] == pytest.approx(0.125)          # 250 us over 2 iterations
    assert inside["coverage"]["device_pct"] == pytest.approx(100 * 200 / 250)
    assert inside["roofline"]["groups"]["GEMM"]["device_ms"] == pytest.approx(0.1)
    assert (inside["roofline"]["device"], inside["roofline"]["bandwidth_gbs"]) == ("H100 SXM", 3350)
    assert (inside["roofline"]["peak"], inside["roofline"]["peak_tflops"]) == ("fp16_tensor", 989.4)


def test_a_group_whose_kernels_took_no_time_has_no_foreign_share():
    kernels = pd.DataFrame({"op_group": ["GEMM", "Memory"], "kernel_class": ["gemm", "memset"],
                            "device_us": [10.0, 0.0]})
    result = kernel_class_totals(kernels, iterations=1)
    assert result["groups"]["Memory"]["device_ms"] == 0.0 and result["groups"]["Memory"]["other_class_pct"] == 0.0
    nothing = kernel_class_totals(kernels.assign(device_us=0.0), iterations=1)
    assert nothing["gemm_class_pct"] == 0.0 and nothing["device_ms"] == 0.0


def test_roofline_gigabytes_and_gigaflops_are_exact():
    ops = pd.DataFrame({"op_group": ["GEMM"], "device_us": [1000.0], "bytes": [3e9], "flops": [8e9]})
    gemm = roofline_totals(ops, iterations=1, bandwidth_gbs=None, peak_tflops=None)["GEMM"]
    assert (gemm["gbytes"], gemm["gflops"], gemm["achieved_gbs"], gemm["achieved_tflops"]) == (3.0, 8.0, 3000.0, 8.0)


def test_halves_compares_the_even_blocks_with_the_odd_ones():
    """Even blocks 10 and 12 ms (median 11), odd 11 and 11: 1.0; with odd at 10 and 12 against even 11 and 13
    (medians 12 and 11): 12 / 11. Under four blocks there are no halves to compare."""
    def blocks(*clean):
        return [{"block": k, "clean_ms": c} for k, c in enumerate(clean)]

    assert halves(blocks(10, 11, 12, 11)) == pytest.approx(1.0)
    assert halves(blocks(11, 10, 13, 12)) == pytest.approx(12 / 11)
    assert halves(blocks(10, 20, 30)) is None
