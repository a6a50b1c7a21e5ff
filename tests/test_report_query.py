"""ngbench.report.query on real files of the CPU fixture sweep: narrowing a source to some files, the sums made
on a thread, Table V's rows of chosen files, and DuckDB's thread limit (known answers from Ops over the same
files, or from pyarrow)."""

import shutil
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from ngbench.report.query import SUM_KEYS, Ops, PendingSums

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "sweep-cpu"
CELLS = ("flow=torch,model=gpt2", "flow=ort,model=gpt2")


def _files() -> list[str]:
    return [str(FIXTURE / cell / "ops.parquet") for cell in CELLS]


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(SUM_KEYS).reset_index(drop=True)


def test_a_source_narrowed_to_one_file_sums_that_file_alone():
    first, second = _files()
    narrowed = Ops([first, second]).with_files([first]).group_sums()
    alone = Ops([first]).group_sums()
    pd.testing.assert_frame_equal(_sorted(narrowed), _sorted(alone), check_like=True)
    assert narrowed["ops"].sum() == pq.read_metadata(first).num_rows


def test_fusion_rows_read_only_the_files_named(tmp_path):
    """The chosen files replace the source's: a broken file elsewhere in the sweep is never opened."""
    first = _files()[0]
    broken = tmp_path / "ops.parquet"
    broken.write_bytes(b"PAR1 not a parquet file")
    run_id = pq.read_table(first, columns=["run_id"])["run_id"][0].as_py()
    chosen = Ops([first, str(broken)]).fusion_rows([run_id], files=[first])
    assert chosen["rows"].sum() == pq.read_metadata(first).num_rows
    pd.testing.assert_frame_equal(chosen, Ops([first]).fusion_rows([run_id]))


def test_pending_sums_add_up_a_run_split_over_two_files(tmp_path):
    """One run_id in two files (a cell's rows written twice): the sums on a thread equal one query over both."""
    first = _files()[0]
    copies = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        copies.append(str(shutil.copy(first, tmp_path / name / "ops.parquet")))
    ops = Ops(copies)
    sums = PendingSums(ops).for_files(copies)
    assert list(sums.columns[:len(SUM_KEYS)]) == SUM_KEYS
    pd.testing.assert_frame_equal(_sorted(sums), _sorted(ops.group_sums()), check_like=True, check_dtype=False)
    assert sums["ops"].sum() == 2 * pq.read_metadata(first).num_rows


def test_limit_threads_sets_duckdbs_threads():
    ops = Ops(_files())
    ops.limit_threads(1)
    assert ops.connection.execute("SELECT current_setting('threads')").fetchone()[0] == 1
