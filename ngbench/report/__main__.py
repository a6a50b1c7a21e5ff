"""python -m ngbench.report DIR [--view wall|wall_profiled|device|host|paper] [--out DIR] [--markdown FILE]

Reads a sweep's (or one run's) summary.json and ops.parquet files and writes CSV tables, PNG/PDF figures named
after the paper's, and one self-contained index.html; with --markdown, only a markdown page of the tables.
Exit status: 0 when every cell is in the report; 3 when the report was written but some cells failed or have
missing or unreadable files (each named on stderr and in failed.csv); 2 on bad input (nothing written).
"""

from __future__ import annotations

import argparse
import sys
from functools import cache
from pathlib import Path

from ngbench.errors import UserError
from ngbench.report.views import VIEWS, check_view

EXIT_COMPLETE, EXIT_BAD_INPUT, EXIT_INCOMPLETE = 0, 2, 3


def open_report(sweep_dir: str | Path, view: str = "wall", out: Path | None = None,
                pages: tuple[str, ...] = ("csv", "html")):
    """The loaded sweep and its group sums. DuckDB reads the columns of every ops.parquet found and sums it
    while the summaries are read (query.Ops.start, PendingSums), and the sums of the ok cells' files are kept; a
    cell whose ops.parquet DuckDB cannot read joins the failed ones (its footer was intact, so load_sweep could
    not tell)."""
    import duckdb

    from ngbench.record import OPS_FILE
    from ngbench.report import query
    from ngbench.report.load import load_sweep, run_dirs
    from ngbench.report.parts import Report
    from ngbench.report.views import with_paper_us

    check_view(view)
    found = run_dirs(sweep_dir, skip=out)
    files = [str(run_dir / OPS_FILE) for run_dir in found if (run_dir / OPS_FILE).is_file()]
    every = query.Ops(files)
    columns = pending = None
    if files:   # on DuckDB's thread, while the summaries are read here: the files' columns, then their group sums
        columns = every.start(query.FILE_COLUMNS_SQL, frame=False)
        pending = query.PendingSums(every)
    sweep = load_sweep(sweep_dir, skip=out, found=found, columns=columns and (lambda: query.file_columns(columns)))
    if not len(sweep.cells):
        return Report(sweep, view, None, None, out, pages)
    ops = every.with_files(sweep.ops_files)
    sums = pending.for_files(sweep.ops_files) if pending is not None else None
    try:
        sums = ops.group_sums() if sums is None else sums
    except duckdb.Error as error:
        unreadable = query.unreadable_files(sweep.ops_files)
        if not unreadable:
            raise UserError(f"{sweep.root}: DuckDB could not read the cells' ops.parquet files ({error})") from error
        sweep.drop_unreadable(unreadable)
        if not len(sweep.cells):
            return Report(sweep, view, None, None, out, pages)
        ops = every.with_files(sweep.ops_files)
        sums = ops.group_sums()
    return Report(sweep, view, ops, with_paper_us(sums, sweep.cells), out, pages)


def _write_text(path: Path, text: str) -> Path:
    from ngbench.output import atomic_write_bytes

    atomic_write_bytes(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return path


def _write_csv(path: Path, frame) -> Path:
    """`frame` as DataFrame.to_csv(index=False) writes it (floats in their shortest round-trip form, missing
    values and empty strings as empty fields, booleans True/False), written by DuckDB in a tenth of the time
    (0.4 s of a 10^6-row report's main process otherwise)."""
    from ngbench.output import atomic_write_bytes

    if not len(frame.columns):
        atomic_write_bytes(path, lambda tmp: frame.to_csv(tmp, index=False))
        return path
    connection = _csv_connection()
    connection.register("frame", frame)

    def column(name: str, kind: str) -> str:
        quoted = '"' + name.replace('"', '""') + '"'
        if kind == "VARCHAR":   # DuckDB quotes an empty string ("") to tell it from a missing value; pandas does not
            return f"nullif({quoted}, '') AS {quoted}"
        if kind == "BOOLEAN":
            return f"CASE WHEN {quoted} THEN 'True' WHEN NOT {quoted} THEN 'False' END AS {quoted}"
        return quoted

    columns = ", ".join(column(name, kind) for name, kind, *_ in connection.execute("DESCRIBE frame").fetchall())

    def copy(tmp) -> None:
        target = str(tmp).replace("'", "''")
        connection.execute(f"COPY (SELECT {columns} FROM frame) TO '{target}' (FORMAT csv, HEADER)")

    try:
        atomic_write_bytes(path, copy)
    finally:
        connection.unregister("frame")
    return path


@cache
def _csv_connection():
    """The DuckDB connection _write_csv uses, one thread (a connection costs 50 ms to make; a report writes ten
    CSV files while the figures are drawn on the other CPU)."""
    import duckdb

    connection = duckdb.connect()
    connection.execute("SET threads = 1")
    return connection


def _require_cells(report, failed_csv: Path | None) -> None:
    if report.sums is None:
        warn_incomplete(report.sweep.failed)
        where = f"; see {failed_csv}" if failed_csv else ""
        raise UserError(f"{report.sweep.root}: no cell finished ok ({len(report.sweep.failed)} failed or "
                        f"unreadable{where})")


def make_report(sweep_dir: str | Path, view: str = "wall", out_dir: str | Path | None = None):
    """Every table (CSV), figure (PNG + PDF) and index.html the sweep's cells support; returns the report and
    the written paths. failed.csv is always written (with its header when no cell failed)."""
    from ngbench.report.page import html_page, prerender
    from ngbench.report.sections import build, start_drawing

    out = Path(out_dir or Path(sweep_dir) / "report")
    check_view(view)
    drawing = start_drawing()   # forked before the files are read: it gets ready to draw meanwhile
    csv_files = {}

    def write_tables(parts: list) -> None:   # while the figures are drawn
        for part in parts:
            if hasattr(part, "frame") and part.csv and part.name not in csv_files:
                csv_files[part.name] = _write_csv(out / f"{part.name}.csv", part.frame)
        prerender(parts)

    try:
        report = open_report(sweep_dir, view, out)   # bad input fails here, before anything is written
        out.mkdir(parents=True, exist_ok=True)
        csv_files["failed"] = _write_csv(out / "failed.csv", report.sweep.failed)
        _require_cells(report, csv_files["failed"])
        sections = build(report, drawing, meanwhile=write_tables)
    finally:
        drawing.close()
    write_tables([part for _, parts in sections for part in parts])   # the drawing process's tables
    written = [csv_files["failed"]]
    for _, parts in sections:
        for part in parts:
            if hasattr(part, "frame") and part.csv and part.name != "failed":
                written.append(csv_files[part.name])
            written += getattr(part, "paths", [])
    name = Path(sweep_dir).resolve().name
    written.append(_write_text(out / "index.html", html_page(report, sections, name)))
    return report, written


def write_reports(sweep_dir: str | Path, view: str = "wall", out_dir: str | Path | None = None) -> list[Path]:
    """make_report's written paths."""
    return make_report(sweep_dir, view, out_dir)[1]


def write_markdown(sweep_dir: str | Path, path: str | Path, view: str = "wall"):
    """The markdown page of the report's tables (no figures, no other file); returns the report and [path]."""
    from ngbench.report.page import markdown_page
    from ngbench.report.sections import build

    report = open_report(sweep_dir, view, None, pages=("markdown",))
    _require_cells(report, None)
    text = markdown_page(report, build(report), Path(sweep_dir).resolve().name)
    return report, [_write_text(Path(path), text)]


def warn_incomplete(failed) -> None:
    """One warning line per cell left out of the report, naming its file and error."""
    if len(failed) == 0:
        return
    print(f"ngbench.report: warning: {len(failed)} cell(s) are not in the report (failed, or a file missing or "
          "unreadable):", file=sys.stderr)
    for row in failed.to_dict("records"):
        print(f"  {row['dir']}/{row['file']}: {row['error']}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ngbench.report", description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", help="a sweep directory (outputs/sweeps/...) or a single run directory")
    parser.add_argument("--view", default="wall", help=f"{' | '.join(VIEWS)} (default: wall, the rebuilt timeline)")
    parser.add_argument("--out", default=None, help="output directory (default: <sweep_dir>/report)")
    parser.add_argument("--markdown", default=None, metavar="FILE",
                        help="write only a markdown page of the tables to FILE (e.g. docs/results/<name>.md)")
    args = parser.parse_args(argv)
    try:
        if args.markdown:
            report, paths = write_markdown(args.sweep_dir, args.markdown, args.view)
        else:
            report, paths = make_report(args.sweep_dir, args.view, args.out)
    except UserError as error:
        print(f"ngbench.report: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    for path in paths:
        print(path)
    warn_incomplete(report.sweep.failed)
    return EXIT_INCOMPLETE if len(report.sweep.failed) else EXIT_COMPLETE


if __name__ == "__main__":
    sys.exit(main())
