"""The report's tables on a hand-made sweep of two cells (model m1 at batch 1 and 2, two iterations each), run
through DuckDB (ngbench.report.query.Ops over a frame) into a Report: per-model and per-cell breakdown tables,
Table IV and Table I, with the values worked out by hand below."""

import math
from pathlib import Path

import pandas as pd
import pytest

from ngbench.report import breakdowns, tables
from ngbench.report.load import Sweep
from ngbench.report.parts import Report
from ngbench.report.query import Ops
from ngbench.report.views import with_paper_us

#   run, iteration, group, op, wall us, input shapes
ROWS = [("a", 0, "GEMM", "aten::mm", 60.0, [[2, 2]]), ("a", 0, "Memory", "aten::copy_", 30.0, [[2, 3]]),
        ("a", 0, "Idle", "[idle]", 10.0, []),
        ("a", 1, "GEMM", "aten::mm", 40.0, [[2, 2]]), ("a", 1, "Memory", "aten::copy_", 50.0, [[2, 3]]),
        ("a", 1, "Idle", "[idle]", 10.0, []),
        ("b", 0, "GEMM", "aten::mm", 30.0, [[4, 2]]), ("b", 0, "Memory", "aten::copy_", 60.0, [[4, 3]]),
        ("b", 0, "Idle", "[idle]", 10.0, []),
        ("b", 1, "GEMM", "aten::mm", 30.0, [[4, 2]]), ("b", 1, "Memory", "aten::copy_", 60.0, [[4, 3]]),
        ("b", 1, "Idle", "[idle]", 10.0, [])]
HALF = 12.706204736 * 10.0   # t(0.975, 1) * s / sqrt(2) with s = 10 sqrt(2): shares 60/40 and 30/50


@pytest.fixture(scope="module")
def report():
    ops = pd.DataFrame([{"run_id": r, "iteration": i, "op_group": g, "op": op, "wall_us": w, "wall_profiled_us": w,
                         "host_us": 0.0 if g == "Idle" else w, "device_us": 0.0 if g == "Idle" else w,
                         "input_shapes": shapes, "is_gemm": g == "GEMM", "model": "m1", "variant": "full"}
                        for r, i, g, op, w, shapes in ROWS])
    key = {"model": "m1", "variant": "full", "task": "", "flow": "torch", "platform": "cpu", "device": "cpu",
           "precision": "fp32", "quant": ""}
    cells = pd.DataFrame([{**key, "batch_size": 1, "run_id": "a"}, {**key, "batch_size": 2, "run_id": "b"}])
    source = Ops(ops)
    return Report(Sweep(Path("."), cells, pd.DataFrame()), "wall", source, with_paper_us(source.group_sums(), cells))


def test_per_model_table_has_a_row_per_cell_and_a_share_per_group(report):
    [table] = breakdowns.per_model_tables(report)
    assert table.name == "model-m1-full" and table.title == "m1: % of latency, wall (rebuilt, un-profiled)"
    frame = table.frame
    assert list(frame.columns)[-3:] == ["GEMM", "Memory", "Idle"] and "batch" in frame.columns
    assert frame[["batch", "GEMM", "Memory", "Idle"]].values.tolist() == [
        [1, f"50.0 ± {HALF:.1f}", f"40.0 ± {HALF:.1f}", "10.0 ± 0.0"],
        [2, "30.0 ± 0.0", "60.0 ± 0.0", "10.0 ± 0.0"]]


def test_per_cell_tables_show_the_wall_ms_and_every_view(report):
    first, second = breakdowns.per_cell_tables(report, report.all_views())
    assert first.title == "m1 | torch | cpu | fp32 | b1" and second.title.endswith("| b2")
    rows = first.frame.set_index("group")
    assert list(rows.index) == ["GEMM", "Memory", "Idle"]
    assert rows["wall ms"].tolist() == ["0.050", "0.040", "0.010"]
    assert rows.loc["GEMM", "wall %"] == f"50.0 ± {HALF:.1f}"
    assert rows.loc["GEMM", "host %"] == f"{100 * 100 / 180:.1f} ± {_host_half():.1f}"
    assert rows.loc["Idle", "host %"] == "–" and rows.loc["Idle", "paper %"] == "–"   # no host time: no share
    assert list(first.frame.columns) == ["group", "wall ms", "wall %", "wall_profiled %", "device %", "host %",
                                         "paper %"]


def _host_half() -> float:
    """Host shares of cell a's GEMM per iteration: 60/90 and 40/90 (Idle has no host time)."""
    shares = [100 * 60 / 90, 100 * 40 / 90]
    s = abs(shares[0] - shares[1]) / math.sqrt(2)
    return 12.706204736 * s / math.sqrt(2)


def test_table4_takes_the_largest_non_gemm_group_averaged_over_batch_sizes(report):
    table = tables.table4(report)
    row = table.frame.iloc[0]
    # Memory 40 (half-width HALF) and 60 (0): mean 50, half-width sqrt(HALF^2 + 0) / 2; Idle (10) never counts
    assert (row["top_non_gemm_group"], row["latency_pct"], row["batch_sizes"]) == ("Memory", pytest.approx(50.0), "1,2")
    assert [row["pct_ci95_lo"], row["pct_ci95_hi"]] == pytest.approx([50 - HALF / 2, 50 + HALF / 2])
    assert table.display["% of latency"].tolist() == [f"50.0 ± {HALF / 2:.1f}"]
    assert table.display["dominant non-GEMM group"].tolist() == ["Memory"]


def test_table1_counts_instances_per_inference_and_the_most_common_shape(report):
    table = tables.table1(report)
    # copy_: 4 rows over 4 inferences of m1, 200 us in all; shapes [[2, 3]] and [[4, 3]] twice each: the first
    assert table.frame.to_dict("records") == [{"model": "m1", "variant": "full", "op_group": "Memory",
                                               "op": "aten::copy_", "instances": 1, "wall_ms": pytest.approx(0.05),
                                               "example_input_shape": "[[2, 3]]"}]


def test_non_gemm_operators_sort_by_group_then_time():
    operators = pd.DataFrame({"model": ["m"] * 3, "variant": ["full"] * 3, "op_group": ["Memory", "Activation", "Memory"],
                              "op": ["aten::cat", "aten::gelu", "aten::copy_"], "rows": [6, 3, 3],
                              "wall_us": [30.0, 90.0, 60.0], "example_input_shape": ["", "", ""]})
    table = tables.non_gemm_operators(operators, {("m", "full"): 3})
    assert table[["op", "instances", "wall_ms"]].values.tolist() == [
        ["aten::gelu", 1, pytest.approx(0.03)], ["aten::copy_", 1, pytest.approx(0.02)],
        ["aten::cat", 2, pytest.approx(0.01)]]


def test_each_section_makes_the_tables_of_the_pages_being_written(report):
    assert [t.name for t in breakdowns.section(report)] == ["breakdown", "breakdown_by_view", "model-m1-full",
                                                          "cell-0", "cell-1"]
    assert [t.name for t in tables.section(report)] == ["table4", "table1"]
    csv_only = Report(report.sweep, "host", report.ops, report.sums, pages=("csv",))
    assert [t.name for t in breakdowns.section(csv_only)] == ["breakdown", "breakdown_by_view"]
    assert breakdowns.section(csv_only)[0].title == "Breakdown (host (operator calls))"
    html_only = Report(report.sweep, "wall", report.ops, report.sums, pages=("html",))
    assert [t.name for t in tables.section(html_only)] == ["table4"]
    table4 = tables.section(html_only)[0]
    assert list(table4.display.columns)[-3:] == ["dominant non-GEMM group", "% of latency", "batch sizes"]
    assert table4.display["batch sizes"].tolist() == ["1,2"] and table4.pages == ("html",)
    assert tables.table1(report).title == "Table I: non-GEMM operators" and tables.table1(report).pages == ()


def test_fused_rows_are_counted_from_a_frame_too():
    """An op row is fused when it stands for several source ops; a frame without the column has none."""
    frame = pd.DataFrame({"run_id": ["a"] * 3, "iteration": [0] * 3, "op_group": ["GEMM"] * 3, "op": ["x", "y", "z"],
                          "host_us": [1.0] * 3, "device_us": [1.0] * 3, "wall_us": [1.0] * 3,
                          "wall_profiled_us": [1.0] * 3, "fused_ops": [["Conv", "Relu"], ["Conv"], None]})
    sums = Ops(frame).group_sums()
    assert sums[["ops", "fused_ops"]].values.tolist() == [[3, 1]]
    assert Ops(frame.drop(columns="fused_ops")).group_sums()["fused_ops"].tolist() == [0]


def test_table1_orders_models_and_counts_instances_as_whole_numbers():
    operators = pd.DataFrame({"model": ["zeta", "alpha", "alpha"], "variant": ["full"] * 3,
                              "op_group": ["Memory", "Memory", "Activation"], "op": ["aten::cat", "aten::cat", "aten::gelu"],
                              "rows": [4, 6, 2], "wall_us": [40.0, 30.0, 20.0], "example_input_shape": ["", "", ""]})
    table = tables.non_gemm_operators(operators, {("zeta", "full"): 2, ("alpha", "full"): 2})
    assert table[["model", "op_group", "op"]].values.tolist() == [["alpha", "Activation", "aten::gelu"],
                                                                  ["alpha", "Memory", "aten::cat"],
                                                                  ["zeta", "Memory", "aten::cat"]]
    assert [str(v) for v in table["instances"]] == ["1", "3", "2"]


def test_table4_says_what_its_interval_is(report):
    assert tables.table4(report).note == "Mean over batch sizes; ± the half-width of the mean's 95% CI."


def test_breakdown_tables_write_csvs_only_for_the_whole_breakdowns_and_show_per_model_tables(report):
    parts = breakdowns.section(report)
    assert [t.name for t in parts if t.csv] == ["breakdown", "breakdown_by_view"]
    assert parts[0].frame.equals(report.breakdown()) and parts[1].frame.equals(report.all_views())
    [model] = breakdowns.per_model_tables(report)
    assert model.display is not None and model.display.equals(model.frame)
    assert model.pages == ("html",) and model.frame.columns.name is None
    assert [t.pages for t in breakdowns.per_cell_tables(report, report.all_views())] == [("markdown",)] * 2
    assert list(model.frame.columns) == ["flow", "platform", "device", "precision", "quant", "batch", "GEMM",
                                         "Memory", "Idle"]


def test_per_model_tables_in_model_order_with_the_variant_in_the_title_unless_full_or_empty():
    ops = pd.DataFrame([{"run_id": r, "iteration": 0, "op_group": "GEMM", "op": "aten::mm", "wall_us": 10.0,
                         "wall_profiled_us": 10.0, "host_us": 10.0, "device_us": 10.0, "input_shapes": [[2, 2]],
                         "is_gemm": True, "model": m, "variant": v}
                        for r, m, v in [("a", "zeta", ""), ("b", "alpha", "tiny"), ("c", "alpha", "full")]])
    key = {"task": "", "flow": "torch", "platform": "cpu", "device": "cpu", "precision": "fp32", "quant": "",
           "batch_size": 1}
    cells = pd.DataFrame([{**key, "model": m, "variant": v, "run_id": r}
                          for r, m, v in [("a", "zeta", ""), ("b", "alpha", "tiny"), ("c", "alpha", "full")]])
    source = Ops(ops)
    report = Report(Sweep(Path("."), cells, pd.DataFrame()), "wall", source, with_paper_us(source.group_sums(), cells))
    titles = [t.title.split(":")[0] for t in breakdowns.per_model_tables(report)]
    assert titles == ["alpha", "alpha (tiny)", "zeta"]


def test_table4_has_one_row_per_model_in_model_order():
    """Cells of models zeta and alpha (run ids in the other order): Table IV lists alpha first, each with its own
    dominant non-GEMM group."""
    rows = [("a", "zeta", "Memory", 30.0), ("a", "zeta", "Activation", 10.0),
            ("b", "alpha", "Memory", 5.0), ("b", "alpha", "Activation", 25.0)]
    ops = pd.DataFrame([{"run_id": r, "iteration": 0, "op_group": g, "op": f"op_{g}", "wall_us": w,
                         "wall_profiled_us": w, "host_us": w, "device_us": w, "input_shapes": [[2, 2]],
                         "is_gemm": False, "model": m, "variant": "full"} for r, m, g, w in rows])
    key = {"variant": "full", "task": "", "flow": "torch", "platform": "cpu", "device": "cpu", "precision": "fp32",
           "quant": "", "batch_size": 1}
    cells = pd.DataFrame([{**key, "model": m, "run_id": r} for r, m in [("a", "zeta"), ("b", "alpha")]])
    source = Ops(ops)
    report = Report(Sweep(Path("."), cells, pd.DataFrame()), "wall", source, with_paper_us(source.group_sums(), cells))
    frame = tables.table4(report).frame
    assert frame[["model", "top_non_gemm_group"]].values.tolist() == [["alpha", "Activation"], ["zeta", "Memory"]]
    assert frame["latency_pct"].tolist() == [pytest.approx(100 * 25 / 30), pytest.approx(75.0)]


def test_a_clean_latency_from_few_inferences_shows_its_range_and_confidence():
    """The cells table's clean latency: a median with its 95% CI, and where fewer than 6 inferences were timed,
    the CI is their range and says how sure it is (ngbench.measure.timing.median_ci)."""
    from ngbench.report.format import with_range

    assert with_range(36084.2981, 30160.6, 38214.7, 3, count=3) == "36084.298 (30160.600–38214.700; range of 3, 75%)"
    assert with_range(68695.16, 68623.9, 68766.4, 1, count=2) == "68695.2 (68623.9–68766.4; range of 2, 50%)"
    assert with_range(1.25, 1.2, 1.3, 2, count=5) == "1.25 (1.20–1.30; range of 5, 93.75%)"
    assert with_range(1.25, 1.2, 1.3, 2, count=30) == with_range(1.25, 1.2, 1.3, 2) == "1.25 (1.20–1.30)"
    assert with_range(1.25, 1.2, 1.3, 2, count=float("nan")) == "1.25 (1.20–1.30)"   # an old summary without iters
