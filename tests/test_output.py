"""The run record on disk (ngbench.output, ngbench.record): writes are whole or absent, files get the umask's
mode, tables keep the fixed Arrow schema, summary.json round-trips, and a broken one is named."""

import json
import os
import stat

import pandas as pd
import pytest

from ngbench.errors import UserError
from ngbench.output import atomic_write_bytes, remove_stale_temporaries, write_json, write_table
from ngbench.record import CellKey, Summary, kernels_table, read_summary, write_run

KEY = CellKey(model="gpt2", variant="tiny", task="text", flow="torch", platform="cpu", device="cpu",
              precision="fp32", quant="", batch_size=2)


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "summary.json"
    target.write_text("old")

    def half_then_fail(tmp):
        with open(tmp, "w") as handle:
            handle.write("half")
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        atomic_write_bytes(target, half_then_fail)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]


def test_the_writer_writes_a_hidden_temporary_beside_the_target(tmp_path):
    seen = []

    def writer(tmp):
        seen.append(tmp)
        assert not (tmp_path / "sub" / "t.json").exists()   # readers never see a partial file
        with open(tmp, "w") as handle:
            handle.write("whole")

    atomic_write_bytes(tmp_path / "sub" / "t.json", writer)
    assert (tmp_path / "sub" / "t.json").read_text() == "whole"
    name = os.path.basename(seen[0])
    assert os.path.dirname(seen[0]) == str(tmp_path / "sub") and name.startswith(".t.json.") and name.endswith(".tmp")
    assert remove_stale_temporaries(tmp_path / "sub") == []


@pytest.mark.parametrize("umask, mode", [(0o027, 0o640), (0o022, 0o644), (0o002, 0o664)])
def test_files_get_the_mode_the_umask_gives(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        write_json(tmp_path / "a.json", {"x": 1})
        assert os.umask(umask) == umask   # reading the umask left it as it was
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == mode


def test_stale_temporaries_are_removed_and_named(tmp_path):
    (tmp_path / ".ops.parquet.abc.tmp").write_text("x")
    (tmp_path / "ops.parquet").write_text("keep")
    (tmp_path / ".hidden").write_text("keep")
    assert [p.name for p in remove_stale_temporaries(tmp_path)] == [".ops.parquet.abc.tmp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".hidden", "ops.parquet"]


def test_write_json_is_indented_with_a_final_newline_and_strings_for_other_types(tmp_path):
    write_json(tmp_path / "s.json", {"a": 1, "path": tmp_path})
    text = (tmp_path / "s.json").read_text()
    assert text == json.dumps({"a": 1, "path": str(tmp_path)}, indent=2) + "\n"


def test_write_table_keeps_the_kernels_schema(tmp_path):
    import pyarrow.parquet as pq

    from ngbench.schema import KERNEL_TABLE_COLUMNS, arrow_schema

    kernels = pd.DataFrame({"iteration": [0], "op_seq": [0], "kernel": ["gemm"], "activity": ["kernel"],
                            "stream": [7], "device_index": ["0"], "device_us": [12.5], "start_us": [1.0]})
    ops = pd.DataFrame({"iteration": [0], "seq": [0], "op": ["aten::mm"], "op_group": ["GEMM"]})
    table = kernels_table(kernels, ops, KEY, "run1")
    assert list(table.columns) == KERNEL_TABLE_COLUMNS
    row = table.iloc[0]
    assert (row["op"], row["op_group"], row["run_id"], row["model"], row["batch_size"]) == \
        ("aten::mm", "GEMM", "run1", "gpt2", 2)
    write_table(tmp_path / "kernels.parquet", table, "kernels")
    read = pq.read_table(tmp_path / "kernels.parquet")
    assert read.schema.equals(arrow_schema("kernels"), check_metadata=False)
    assert read.column("device_us").to_pylist() == [12.5]


def test_summary_round_trips_with_the_cell_key_flat_in_front(tmp_path):
    summary = Summary(status="ok", key=KEY, run_id="abc", profiled_ms=2.5, groups={"GEMM": {"wall_ms": 1.0}})
    write_run(tmp_path, summary)
    data = read_summary(tmp_path)
    assert list(data)[:3] == ["status", "run_id", "model"]
    assert data["batch_size"] == 2 and data["profiled_ms"] == 2.5 and "key" not in data
    back = Summary.from_json(data)
    assert back == summary
    assert Summary.from_json({"status": "failed", "error": "x"}).key is None
    assert not (tmp_path / "ops.parquet").exists()


def test_a_missing_summary_is_none_and_a_broken_one_is_named(tmp_path):
    assert read_summary(tmp_path) is None
    (tmp_path / "summary.json").write_text('{"status": "o')
    with pytest.raises(UserError, match=r"summary.json is not readable JSON .*; delete it or rerun the cell"):
        read_summary(tmp_path)


def test_a_failed_cell_keeps_the_traceback_of_a_tool_error_only():
    user = Summary.failed(KEY, {}, UserError("bad input"))
    assert (user.status, user.error, user.user_error, user.traceback) == ("failed", "UserError: bad input", True, "")
    import traceback

    try:
        raise ValueError("boom")
    except ValueError as exc:
        tool, error = Summary.failed(KEY, {"a": 1}, exc), exc
    assert tool.user_error is False and "ValueError: boom" in tool.traceback and tool.config == {"a": 1}
    assert tool.traceback == "".join(traceback.format_exception(error)) and tool.key == KEY


@pytest.mark.parametrize("overrides, expected", [({}, "full"), ({"n_layer": 2}, "tiny"), ({"n_layer": 3}, "custom")])
def test_variant_of_a_model_config(overrides, expected):
    assert CellKey.variant_of({"overrides": overrides, "tiny": {"n_layer": 2}}) == expected


BREAKDOWN_SUMMARY = {
    "model": "gpt2", "variant": "tiny", "flow": "torch", "device": "cpu", "precision": "fp32", "quant": "dynamic",
    "batch_size": 2,
    "groups": {"Elementwise": {"wall_ms": 0.02, "wall_pct": 20.0, "wall_pct_ci95": [18.0, 22.5], "wall_profiled_pct": 30.0,
                               "device_ms": 0.005, "host_ms": 0.02, "ops": 3},
               "GEMM": {"wall_ms": 0.05, "wall_pct": 50.0, "wall_pct_ci95": [45.0, 55.0], "wall_profiled_pct": 48.0,
                        "device_ms": 0.03, "host_ms": 0.01, "ops": 1}},
    "clean": {"median_ms": 1.25, "ci95_ms": [1.2, 1.3], "iters": 40},
    "reconstructed_ms": 1.3, "profiled_ms": 2.5, "gemm_pct": 50.0,
    "reconciliation": {"reconstructed_over_clean": 1.04, "profiled_over_clean": 2.0, "device_busy_share": 0.125},
    "warnings": ["2 of 8 profiled iterations stalled and were left out"],
    "unmapped_ops": {"aten::odd": 2},
}


def test_the_console_breakdown_shows_each_group_and_the_figures_of_the_run(capsys, monkeypatch):
    from ngbench.output import print_breakdown

    monkeypatch.setenv("COLUMNS", "200")
    print_breakdown(BREAKDOWN_SUMMARY)
    lines = capsys.readouterr().out.splitlines()
    assert "gpt2 (tiny) | torch | cpu | fp32 | dynamic | batch 2" in lines[0]
    header = [[cell.strip() for cell in line.split("┃")[1:-1]] for line in lines if "┃" in line]
    assert header == [["group", "wall ms", "wall %", "95% CI", "profiled %", "device ms", "host ms", "ops"]]
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in lines if "│" in line]
    assert rows == [["GEMM", "0.050", "50.0", "45.0-55.0", "48.0", "0.030", "0.010", "1"],
                        ["Elementwise", "0.020", "20.0", "18.0-22.5", "30.0", "0.005", "0.020", "3"]]
    text = " ".join(line.strip() for line in lines if not line.startswith(("┏", "┃", "┡", "│", "└")))
    assert ("clean 1.250 ms (95% CI 1.200-1.300, 40 inferences) | rebuilt 1.300 ms (rebuilt/clean 1.040) | "
            "profiled 2.500 ms (profiled/clean 2.000) | device busy 12.5% | GEMM 50.0%") in text
    assert "warning: 2 of 8 profiled iterations stalled and were left out" in text
    assert "unmapped ops (counted as Other): {'aten::odd': 2}" in text


def test_a_full_model_without_quantization_has_a_short_title(capsys, monkeypatch):
    from ngbench.output import print_breakdown

    monkeypatch.setenv("COLUMNS", "200")
    print_breakdown({**BREAKDOWN_SUMMARY, "variant": "full", "quant": "", "warnings": [], "unmapped_ops": {}})
    out = capsys.readouterr().out
    assert "gpt2 | torch | cpu | fp32 | batch 2" in out.splitlines()[0]
    assert "warning" not in out and "unmapped" not in out


def test_a_summary_without_figures_still_prints_its_title(capsys, monkeypatch):
    from ngbench.output import print_breakdown

    monkeypatch.setenv("COLUMNS", "200")
    print_breakdown({"model": "m", "flow": "torch", "device": "cpu", "precision": "fp32", "batch_size": 1})
    out = capsys.readouterr().out
    assert "m | torch | cpu | fp32 | batch 1" in out
    assert "clean nan ms (95% CI nan-nan, 0 inferences) | rebuilt nan ms" in " ".join(out.split())


def test_ops_table_puts_the_run_columns_in_front_in_schema_order():
    from ngbench.record import ops_table
    from ngbench.schema import OPS_COLUMNS

    ops = pd.DataFrame({c: [None] for c in OPS_COLUMNS if c not in KEY.names() + ["run_id"]})
    table = ops_table(ops.assign(op="aten::mm", flops=1.0, bytes=2.0), KEY, "run9")
    assert list(table.columns) == OPS_COLUMNS
    assert (table["run_id"].item(), table["model"].item(), table["batch_size"].item()) == ("run9", "gpt2", 2)
    assert (table["flops"].item(), table["bytes"].item()) == (1.0, 2.0)


def _op_rows(**columns):
    from ngbench.schema import OPS_COLUMNS

    ops = pd.DataFrame({c: [None] for c in OPS_COLUMNS if c not in KEY.names() + ["run_id", "flops", "bytes"]})
    return ops.assign(**columns)


def test_ops_table_estimates_work_where_the_copy_is_visible_only():
    """A contiguous() copy of a float [64, 32] tensor with a kernel: on a GPU it moves 2 x 4 x 2048 bytes; on the
    CPU the copy's kernel is not seen, so its work is unknown."""
    from dataclasses import replace

    from ngbench.record import ops_table

    ops = _op_rows(op="aten::contiguous", input_shapes=[[[64, 32]]], input_dtypes=[["float"]], input_values=[[""]],
                   kernels=[["copy_kernel"]])
    gpu = ops_table(ops, replace(KEY, device="cuda:0", platform="cuda"), "run1")
    assert (gpu["flops"].item(), gpu["bytes"].item()) == (0.0, 16384.0)
    cpu = ops_table(ops, KEY, "run2")
    assert cpu["flops"].isna().all() and cpu["bytes"].isna().all()


def test_write_run_writes_each_table_where_the_report_reads_it(tmp_path):
    import pyarrow.parquet as pq

    from ngbench.record import KERNELS_FILE, OPS_FILE, ops_table

    ops = ops_table(_op_rows(op="aten::mm", iteration=0, seq=0, op_group="GEMM", flops=1.0, bytes=2.0), KEY, "r1")
    kernels = pd.DataFrame({"iteration": [0], "op_seq": [0], "kernel": ["gemm"], "activity": ["kernel"],
                            "stream": [7], "device_index": ["0"], "device_us": [12.5], "start_us": [1.0]})
    write_run(tmp_path / "cell", Summary(status="ok", key=KEY, run_id="r1"), ops, kernels_table(kernels, ops, KEY, "r1"))
    assert sorted(p.name for p in (tmp_path / "cell").iterdir()) == sorted([OPS_FILE, KERNELS_FILE, "summary.json"])
    assert pq.read_table(tmp_path / "cell" / OPS_FILE).column("op").to_pylist() == ["aten::mm"]
    assert pq.read_table(tmp_path / "cell" / KERNELS_FILE).column("op_group").to_pylist() == ["GEMM"]


def test_owned_kernels_takes_op_and_group_from_the_ops_unless_it_has_both():
    from ngbench.record import owned_kernels

    ops = pd.DataFrame({"iteration": [0, 0], "seq": [0, 1], "op": ["aten::mm", "aten::add"],
                        "op_group": ["GEMM", "Elementwise"]})
    stale = pd.DataFrame({"iteration": [0, 0], "op_seq": [1, 0], "kernel": ["add_kernel", "sm90_gemm"],
                          "op": ["old", "old"], "kernel_class": ["x", "x"]})
    owned = owned_kernels(stale, ops)
    assert owned[["op", "op_group", "kernel_class"]].values.tolist() == [["aten::add", "Elementwise", "elementwise"],
                                                                         ["aten::mm", "GEMM", "gemm"]]
    orphan = pd.DataFrame({"iteration": [0], "op_seq": [5], "kernel": ["gemm"]})      # no op row of its own
    assert owned_kernels(orphan, ops)[["kernel", "kernel_class"]].values.tolist() == [["gemm", "gemm"]]
    complete = stale.assign(op_group=["Elementwise", "GEMM"])
    assert owned_kernels(complete, ops) is complete


def test_a_failed_summary_keeps_its_cell_key():
    failed = Summary.failed(KEY, {"iters": 0}, UserError("iters=0 is not valid"))
    assert (failed.key, failed.config, failed.error) == (KEY, {"iters": 0}, "UserError: iters=0 is not valid")


def test_a_summary_of_an_older_version_without_task_reads_an_empty_task():
    data = {k: v for k, v in Summary(status="ok", key=KEY, run_id="abc").to_json().items() if k != "task"}
    assert Summary.from_json(data).key.task == ""


def test_writes_create_the_missing_directories(tmp_path):
    write_json(tmp_path / "a" / "b" / "c.json", {"x": 1})
    assert json.loads((tmp_path / "a" / "b" / "c.json").read_text()) == {"x": 1}


def test_the_console_breakdown_aligns_group_names_left_and_figures_right(capsys, monkeypatch):
    from ngbench.output import print_breakdown

    monkeypatch.setenv("COLUMNS", "200")
    print_breakdown(BREAKDOWN_SUMMARY)
    rows = [line.split("│")[1:-1] for line in capsys.readouterr().out.splitlines() if "│" in line]
    assert [cells[0].lstrip(" ")[:4] for cells in rows] == ["GEMM", "Elem"]       # left: one space of padding
    assert {len(cells[0]) - len(cells[0].lstrip()) for cells in rows} == {1}
    assert {len(cells[1]) - len(cells[1].rstrip()) for cells in rows} == {1}       # right


def test_report_csv_is_the_text_pandas_writes(tmp_path):
    """The report's CSV writer (DuckDB's) gives DataFrame.to_csv's bytes: empty strings and missing values as
    empty fields, booleans True/False, floats in their shortest round-trip form, quotes where a field needs them."""
    from ngbench.report.__main__ import _write_csv

    frame = pd.DataFrame({
        "model": pd.Series(["gpt2", "", None, 'say "hi", twice'], dtype="str"),
        "ok": [True, False, True, False],
        "n": [1, 2, 3, 4],
        "maybe": pd.array([1, None, 3, None], dtype="Int64"),
        "ms": [0.1, 9.96347112163145e-05, float("nan"), 1e16],
        "batch_sizes": ["1,2,4,8", "1", "", "8"],
    })
    path = _write_csv(tmp_path / "it's" / "t.csv", frame)   # a quote in the path, too
    assert path.read_text() == frame.to_csv(index=False)
    assert _write_csv(tmp_path / "empty.csv", frame.iloc[:0]).read_text() == frame.iloc[:0].to_csv(index=False)
