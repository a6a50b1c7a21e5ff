"""Loading a sweep for the report (ngbench.report.load), in process, on a sweep directory built here from the
committed CPU fixture: the cells table carries each summary's figures, and every kind of broken cell becomes one
row of the failed table naming its file and what to do."""

import json
import shutil
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from ngbench.errors import UserError
from ngbench.report.load import FAILED_COLUMNS, load_sweep

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "sweep-cpu"
OK_CELL = "flow=torch,model=gpt2"


@pytest.fixture
def sweep(tmp_path):
    """One ok cell (with known figures written into its summary) and six broken ones."""
    root = tmp_path / "sweep"
    shutil.copytree(FIXTURE / OK_CELL, root / "ok")
    summary = json.loads((root / "ok" / "summary.json").read_text())
    summary.update(run_id="run-ok", reconstructed_ms=1.5, profiled_ms=2.5, schema_version=3,
                   clean={"median_ms": 1.25, "ci95_ms": [1.2, 1.3], "p10_ms": 1.1, "p90_ms": 1.4, "cv": 0.05,
                          "iters": 40},
                   reconciliation={"reconstructed_over_clean": 1.2, "profiled_over_clean": 2.0,
                                   "device_busy_share": 0.25, "stalled_iterations": 1, "profiled_iterations": 8},
                   energy={"joules_per_inference": 0.5}, memory={"peak_bytes": 1024},
                   model_facts={"param_count": 1000, "seq_len": 16}, environment={"gpu": "H100", "cpu": "Xeon"},
                   warnings=["first warning", "second warning"])
    (root / "ok" / "summary.json").write_text(json.dumps(summary))
    broken = {
        "failed": {"status": "failed", "model": "gpt2", "error": "UserError: batch_size=0 is not valid\nmore"},
        "no_status": {"model": "gpt2"},
        "no_ops": {**summary, "run_id": "run-no-ops"},
        "old_ops": {**summary, "run_id": "run-old"},
        "bad_ops": {**summary, "run_id": "run-bad"},
    }
    for name, data in broken.items():
        (root / name).mkdir()
        (root / name / "summary.json").write_text(json.dumps(data))
    pd.DataFrame({"op": ["aten::mm"], "wall_us": [1.0]}).to_parquet(root / "old_ops" / "ops.parquet")
    (root / "bad_ops" / "ops.parquet").write_bytes(b"PAR1 truncated")
    (root / "unfinished").mkdir()
    shutil.copy(root / "ok" / "ops.parquet", root / "unfinished" / "ops.parquet")
    (root / "broken_json").mkdir()
    (root / "broken_json" / "summary.json").write_text('{"status": ')
    return root


def test_an_ok_cell_carries_its_summary_figures(sweep):
    cells = load_sweep(sweep).cells
    assert len(cells) == 1
    row = cells.iloc[0]
    assert (row["model"], row["flow"], row["run_id"], row["dir"]) == ("gpt2", "torch", "run-ok", "ok")
    assert row["ops_path"] == str(sweep / "ok" / "ops.parquet")
    assert (row["clean_ms"], row["clean_ci95_lo_ms"], row["clean_ci95_hi_ms"]) == (1.25, 1.2, 1.3)
    assert (row["clean_p10_ms"], row["clean_p90_ms"], row["clean_cv"], row["clean_iters"]) == (1.1, 1.4, 0.05, 40)
    assert (row["reconstructed_ms"], row["profiled_ms"]) == (1.5, 2.5)
    assert (row["reconstructed_over_clean"], row["profiled_over_clean"], row["device_busy_share"]) == (1.2, 2.0, 0.25)
    assert (row["stalled_iterations"], row["profiled_iterations"]) == (1, 8)
    assert (row["energy_j"], row["peak_memory_bytes"], row["param_count"], row["seq_len"]) == (0.5, 1024, 1000, 16)
    assert (row["gpu"], row["cpu"], row["schema_version"]) == ("H100", "Xeon", 3)
    assert row["warning_count"] == 2 and row["warnings"] == "first warning; second warning"


def test_each_broken_cell_is_one_failed_row_naming_its_file(sweep):
    failed = load_sweep(sweep).failed
    assert list(failed.columns) == FAILED_COLUMNS
    rows = {row["dir"]: row for row in failed.to_dict("records")}
    assert sorted(rows) == ["bad_ops", "broken_json", "failed", "no_ops", "no_status", "old_ops", "unfinished"]
    assert (rows["failed"]["file"], rows["failed"]["error"], rows["failed"]["model"]) == \
        ("summary.json", "UserError: batch_size=0 is not valid", "gpt2")
    assert rows["no_status"]["error"] == f"{sweep / 'no_status' / 'summary.json'} is not an ngbench summary (no status)"
    assert rows["unfinished"]["error"] == (f"{sweep / 'unfinished' / 'summary.json'} is missing (the run did not "
                                           "finish, or the file was deleted); rerun the cell")
    assert rows["broken_json"]["error"].startswith(f"{sweep / 'broken_json' / 'summary.json'} is not readable JSON")
    assert (rows["no_ops"]["file"], rows["no_ops"]["error"]) == \
        ("ops.parquet", f"{sweep / 'no_ops' / 'ops.parquet'} is missing (summary.json says ok); rerun the cell")
    assert rows["no_ops"]["model"] == "gpt2" and rows["no_ops"]["flow"] == "torch"
    assert rows["old_ops"]["error"].startswith(f"{sweep / 'old_ops' / 'ops.parquet'} has schema_version 1 and lacks ")
    assert rows["old_ops"]["error"].endswith("; rerun the cell") and "op_group" in rows["old_ops"]["error"]
    assert rows["bad_ops"]["error"].startswith(f"{sweep / 'bad_ops' / 'ops.parquet'} is not a readable Parquet file (")
    assert rows["bad_ops"]["error"].endswith("); delete the cell and rerun it")


@pytest.mark.parametrize("truncated", [False, True])
def test_footers_read_by_duckdb_fail_the_cells_that_footers_read_one_by_one_fail(sweep, truncated, monkeypatch):
    """The report has DuckDB read every ops.parquet's footer on its thread (query.FILE_COLUMNS_SQL) while the
    summaries are read: the same cells are ok and the same fail, with the same errors, as when load_sweep reads
    each file's schema itself. Where DuckDB could read them all, only a file it does not vouch for (one that
    lacks a column) is opened again, for its message; with a truncated file among them, DuckDB vouches for
    none and each is opened."""
    from ngbench.report.query import FILE_COLUMNS_SQL, Ops, file_columns

    if not truncated:
        (sweep / "bad_ops" / "ops.parquet").unlink()   # a missing file: DuckDB is not asked about it
    files = sorted(str(path) for path in sweep.rglob("ops.parquet"))
    known = file_columns(Ops(files).start(FILE_COLUMNS_SQL, frame=False))
    assert (known is None) == truncated
    alone = load_sweep(sweep)
    opened = []
    read_schema = pq.read_schema
    monkeypatch.setattr(pq, "read_schema", lambda path, *a, **k: opened.append(Path(path).parent.name) or
                        read_schema(path, *a, **k))
    read = load_sweep(sweep, columns=lambda: known)
    pd.testing.assert_frame_equal(read.cells, alone.cells)
    pd.testing.assert_frame_equal(read.failed, alone.failed)
    assert "old_ops" in set(read.failed["dir"]) and "ok" in set(read.cells["dir"])
    assert sorted(opened) == (["bad_ops", "ok", "old_ops"] if truncated else ["old_ops"])


def test_a_run_directory_itself_is_a_sweep_of_one_cell(sweep):
    one = load_sweep(sweep / "ok")
    assert list(one.cells["dir"]) == ["."] and one.failed.empty


def test_the_report_output_directory_is_left_out(sweep):
    report_dir = sweep / "report"
    shutil.copytree(sweep / "ok", report_dir / "copy")
    assert "report/copy" not in set(load_sweep(sweep, skip=report_dir).cells["dir"])
    assert "report/copy" in set(load_sweep(sweep).cells["dir"])


def test_what_is_not_a_sweep_is_named(tmp_path):
    with pytest.raises(UserError) as missing:
        load_sweep(tmp_path / "nothing")
    assert str(missing.value) == (f"{tmp_path / 'nothing'} does not exist or is not a directory; give a sweep or run "
                                  "directory (outputs/sweeps/...)")
    with pytest.raises(UserError, match=r"holds no summary.json: not an ngbench run or sweep directory"):
        load_sweep(tmp_path)


def test_cells_are_ordered_by_their_key(tmp_path):
    for name in ("flow=torch,model=swin_t", "flow=ort,model=gpt2", "flow=torch,model=gpt2"):
        shutil.copytree(FIXTURE / name, tmp_path / name)
    cells = load_sweep(tmp_path).cells
    assert list(zip(cells["model"], cells["flow"])) == [("gpt2", "ort"), ("gpt2", "torch"), ("swin_t", "torch")]


def test_a_failed_run_directory_given_itself_and_a_summary_without_error_or_environment(tmp_path):
    (tmp_path / "summary.json").write_text(json.dumps({"status": "failed", "model": "gpt2"}))
    [row] = load_sweep(tmp_path).failed.to_dict("records")
    assert (row["dir"], row["file"], row["error"], row["flow"]) == (".", "summary.json", "status=failed", "")


def test_an_ops_file_of_schema_2_lacking_columns_says_its_version(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    shutil.copytree(FIXTURE / OK_CELL, tmp_path / "cell")
    table = pa.table({"op": ["aten::mm"]}).replace_schema_metadata({"ngbench_schema_version": "2"})
    pq.write_table(table, tmp_path / "cell" / "ops.parquet")
    [row] = load_sweep(tmp_path).failed.to_dict("records")
    assert f"{tmp_path / 'cell' / 'ops.parquet'} has schema_version 2 and lacks run_id, iteration" in row["error"]
    assert row["file"] == "ops.parquet" and row["model"] == "gpt2"


def test_a_cell_without_environment_has_empty_gpu_and_cpu(tmp_path):
    shutil.copytree(FIXTURE / OK_CELL, tmp_path / "cell")
    summary = json.loads((tmp_path / "cell" / "summary.json").read_text())
    summary.pop("environment", None)
    (tmp_path / "cell" / "summary.json").write_text(json.dumps(summary))
    row = load_sweep(tmp_path).cells.iloc[0]
    assert (row["gpu"], row["cpu"]) == ("", "")


def test_cells_whose_ops_duckdb_cannot_read_move_to_the_failed_ones(tmp_path):
    from ngbench.report.query import Ops, unreadable_files

    for name in ("flow=torch,model=gpt2", "flow=ort,model=gpt2"):
        shutil.copytree(FIXTURE / name, tmp_path / name)
    sweep = load_sweep(tmp_path)
    good = sweep.ops_files[0]
    assert unreadable_files(sweep.ops_files) == {}
    bad = sweep.ops_files[1]
    sweep.drop_unreadable({bad: "broken page"})
    assert sweep.ops_files == [good]
    [row] = sweep.failed.to_dict("records")
    assert row["dir"] == Path(bad).parent.name
    assert (row["file"], row["error"]) == ("ops.parquet", f"{bad} is not readable (broken page); delete the cell and "
                                                          "rerun it")
    run_id = sweep.cells.iloc[0]["run_id"]
    rows = Ops([good]).fusion_rows([run_id])   # Table V's sums, of the cells still in
    assert set(rows["run_id"]) == {run_id} and rows["rows"].sum() == pq.read_metadata(good).num_rows



def test_unreadable_files_gives_duckdbs_reason_for_each_broken_file(tmp_path):
    from ngbench.report.query import unreadable_files

    good = FIXTURE / OK_CELL / "ops.parquet"
    bad = tmp_path / "ops.parquet"
    bad.write_bytes(b"PAR1 truncated")
    assert unreadable_files([str(good), str(bad)]) == {
        str(bad): f"Invalid Input Error: No magic bytes found at end of file '{bad}'"}


def test_an_all_ok_sweep_has_an_empty_failed_table_with_its_columns_and_a_summary_may_lack_run_id(tmp_path):
    shutil.copytree(FIXTURE / OK_CELL, tmp_path / "ok")
    summary = json.loads((tmp_path / "ok" / "summary.json").read_text())
    del summary["run_id"], summary["task"]
    (tmp_path / "ok" / "summary.json").write_text(json.dumps(summary))
    sweep = load_sweep(tmp_path)
    assert list(sweep.failed.columns) == FAILED_COLUMNS and sweep.failed.empty
    assert sweep.cells["run_id"].tolist() == [""] and sweep.cells["task"].tolist() == [""]
    (tmp_path / "linked").symlink_to(FIXTURE / "flow=ort,model=gpt2", target_is_directory=True)   # a cell elsewhere
    assert sorted(load_sweep(tmp_path).cells["dir"]) == ["linked", "ok"]


def test_sums_of_some_files_equal_those_of_a_query_over_them_alone(tmp_path):
    """The report sums every ops.parquet once, on a thread, then keeps the ok cells' files (PendingSums), and
    narrows its source to them (Ops.with_files): both must give what a query over those files alone gives,
    also where one run's rows are in two files; a broken file makes the pending sums None."""
    from ngbench.report.query import Ops, PendingSums

    good = FIXTURE / OK_CELL / "ops.parquet"
    other = FIXTURE / "flow=ort,model=gpt2" / "ops.parquet"
    twin = tmp_path / "twin.parquet"
    shutil.copy(good, twin)
    files = [str(good), str(other), str(twin)]

    def alone(chosen):
        return Ops(chosen).group_sums().reset_index(drop=True)

    every = Ops(files)
    assert every.with_files([str(good)]).group_sums().equals(alone([str(good)]))
    pending = PendingSums(every)
    for chosen in ([str(good)], [str(good), str(twin)], [str(other)]):
        sums = pending.for_files(chosen)
        assert sums[alone(chosen).columns.tolist()].equals(alone(chosen)), chosen
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 truncated")
    assert PendingSums(Ops([str(good), str(broken)])).for_files([str(good)]) is None
