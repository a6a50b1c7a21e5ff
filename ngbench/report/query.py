"""DuckDB over a sweep's ops.parquet files: the few aggregates every table and figure is made from.

The files are scanned once per aggregate with `union_by_name` (files of different flows or versions line up
by column name) and the aggregation runs inside DuckDB, so memory grows with the number of cells and groups,
not with the number of operator rows. A source is a list of ops.parquet paths or a pandas frame of op rows.
"""

from __future__ import annotations

import copy

from ngbench.schema import IDLE_OP, UNATTRIBUTED_OP

TIME_COLUMNS = ["host_us", "device_us", "wall_us", "wall_profiled_us"]
SUM_KEYS = ["run_id", "iteration", "op_group", "op"]


def _group_sums_sql(file_column: str = "") -> str:
    return f"""
SELECT run_id, iteration, op_group,
       CASE WHEN op IN ('{IDLE_OP}', '{UNATTRIBUTED_OP}') THEN op ELSE '' END AS op,
       {", ".join(f"sum({c}) AS {c}" for c in TIME_COLUMNS)},
       count(*) AS ops, count(*) FILTER (WHERE len(fused_ops) > 1) AS fused_ops{file_column}
FROM {{source}} GROUP BY ALL ORDER BY ALL
"""


# The aggregate every view is computed from: per cell, iteration and group; `op` keeps the pseudo-ops apart
# (the paper's accounting leaves them out) and is '' for every real operator.
GROUP_SUMS_SQL = _group_sums_sql()
# The same per file (`filename`), to be cut down to some of the files afterwards (PendingSums)
GROUP_SUMS_BY_FILE_SQL = _group_sums_sql(", filename")
# Table I: non-GEMM operators per model with their count and time, and their most common input shapes
# (ties broken by the shapes' text, so that the table is the same on every run). One pass over the rows, grouped
# by the shapes' hash rather than by the nested lists, and only one shape per distinct hash cast to text: at
# 10^6 rows on one DuckDB thread (2-core machine) 0.81-0.92 s of CPU against 0.99-1.02 s for two passes (two
# shapes with one 64-bit hash would count as one).
OPERATORS_SQL = """
WITH shapes AS (SELECT model, variant, op_group, op, hash(input_shapes) AS shape_hash,
                       any_value(input_shapes) AS input_shapes, count(*) AS n, sum(wall_us) AS wall_us
                FROM {source} WHERE NOT is_gemm AND op_group <> 'Idle'
                GROUP BY model, variant, op_group, op, shape_hash)
SELECT model, variant, op_group, op, sum(n)::BIGINT AS rows, sum(wall_us) AS wall_us,
       coalesce(first(CAST(input_shapes AS VARCHAR) ORDER BY n DESC, CAST(input_shapes AS VARCHAR))
                FILTER (WHERE len(input_shapes) > 0), '') AS example_input_shape
FROM shapes GROUP BY ALL ORDER BY ALL
"""

# The names in each file's schema (its footer: the columns and the fields nested in them), for load.load_sweep's check
FILE_COLUMNS_SQL = "SELECT file_name, list(name) AS names FROM parquet_schema($files) GROUP BY ALL"


def file_columns(started) -> dict[str, set[str]] | None:
    """{file: the names in its schema} from FILE_COLUMNS_SQL's Future (Ops.start, frame=False), or None where DuckDB could not
    read every file's footer (a file is truncated: each is then looked at alone)."""
    import duckdb

    try:
        rows = started.result()
    except duckdb.Error:
        return None
    return {file: set(names) for file, names in rows}


# Table V: the op rows of the cells it compares, summed per iteration over what the fusion analysis tells apart
# (ngbench.fusion: an operator, its group, whether it is a GEMM, the operators a fused row fused, which counts
# only from two on): a few hundred rows per cell where the files hold tens of thousands; `rows` says how many.
FUSION_SQL = f"""
SELECT run_id, iteration, op, op_group, is_gemm,
       CASE WHEN len(fused_ops) >= 2 THEN fused_ops ELSE [] END AS fused_ops,
       count(*) AS rows, {", ".join(f"sum({c}) AS {c}" for c in TIME_COLUMNS)}
FROM {{source}} WHERE list_contains($run_ids, run_id) GROUP BY ALL ORDER BY ALL
"""


class Ops:
    """The op rows of a sweep (files) or of a frame, queried with DuckDB."""

    def __init__(self, source):
        import duckdb

        self.connection = duckdb.connect()
        self.connection.execute("SET preserve_insertion_order = false")
        self.worker = None   # the thread of the queries started ahead (start)
        if isinstance(source, list):
            self.relation = "read_parquet($files, union_by_name = true, filename = true)"
            self.parameters = {"files": list(source)}
        else:
            frame = source.copy()
            if "fused_ops" not in frame:
                frame["fused_ops"] = [[]] * len(frame)
            frame["fused_ops"] = [list(v) if v is not None else [] for v in frame["fused_ops"]]
            self.connection.register("ops_frame", frame)
            self.relation, self.parameters = "ops_frame", {}

    def with_files(self, files: list[str]) -> Ops:
        """The op rows of `files` (a source of files), queried on this one's connection."""
        narrowed = copy.copy(self)
        narrowed.parameters, narrowed.empty = {"files": list(files)}, not files
        return narrowed

    def start(self, sql: str, frame: bool = True):
        """The Future of `sql`'s result (query's, no parameters; without `frame`, a list of tuples, which needs
        no pandas, so that it is not held up while this process imports it), run from now on on a thread, after
        the queries started before: DuckDB lets go of the GIL while it works, so that this process goes on."""
        if self.worker is None:
            from concurrent.futures import ThreadPoolExecutor

            self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ngbench-duckdb")
        cursor = self.connection.cursor()   # a connection is for one thread at a time; a cursor is one of its own

        def run():
            result = cursor.execute(sql.format(source=self.relation), self.parameters)
            return result.df() if frame else result.fetchall()

        return self.worker.submit(run)

    def close(self) -> None:
        """Give DuckDB's memory back (no query runs after this; one started and still running is waited for)."""
        if self.worker is not None:
            self.worker.shutdown(wait=True)
        self.connection.close()

    def limit_threads(self, threads: int) -> None:
        """Let DuckDB use at most `threads` threads from now on (the rest of the CPUs are busy elsewhere)."""
        self.connection.execute(f"SET threads = {int(threads)}")

    def query(self, sql: str, **parameters):
        """The result of `sql` (with {source} standing for the op rows) as a pandas frame."""
        return self.connection.execute(sql.format(source=self.relation), {**self.parameters, **parameters}).df()

    def group_sums(self):
        """Per run_id, iteration, op_group and pseudo-op: summed times, op rows, fused rows."""
        return self.query(GROUP_SUMS_SQL)

    def operators(self):
        return self.query(OPERATORS_SQL)

    def fusion_rows(self, run_ids: list[str], files: list[str] | None = None):
        """FUSION_SQL's sums for the cells `run_ids`; `files`, when the source is files, are those that hold
        these cells (the others are not opened)."""
        chosen = {"files": list(files)} if files is not None and "files" in self.parameters else {}
        return self.query(FUSION_SQL, run_ids=list(run_ids), **chosen)


class PendingSums:
    """GROUP_SUMS_BY_FILE_SQL over every ops.parquet of a sweep, run by DuckDB on a thread from now on: it
    overlaps the reading of the summaries, which say which cells are ok (DuckDB releases the GIL while it
    works). for_files() then gives the group sums of those cells' files alone, as Ops.group_sums would over
    them, or None where DuckDB failed (a broken file: the caller looks at the files one by one)."""

    def __init__(self, ops: Ops):
        self.future = ops.start(GROUP_SUMS_BY_FILE_SQL)

    def for_files(self, files: list[str]):
        import duckdb

        try:
            by_file = self.future.result()
        except duckdb.Error:
            return None
        sums = by_file[by_file["filename"].isin(files)].drop(columns="filename").reset_index(drop=True)
        if sums.duplicated(SUM_KEYS).any():   # one run_id in several files: one query over them sums them
            sums = sums.groupby(SUM_KEYS, as_index=False, sort=True).sum()
        return sums


def unreadable_files(files: list[str]) -> dict[str, str]:
    """{file: error} of the files DuckDB cannot read whole (a footer can be intact over broken pages)."""
    import duckdb

    from ngbench.errors import first_line

    bad = {}
    for path in files:
        try:  # every column is decoded: the broken page may be in any of them
            duckdb.connect().execute("SELECT * FROM read_parquet($f)", {"f": path}).fetchall()
        except duckdb.Error as exc:
            bad[path] = first_line(exc)
    return bad
