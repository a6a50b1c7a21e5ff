"""Find a sweep's (or a run's) cells and read their summaries. A failed cell, and a cell whose summary.json or
ops.parquet is missing or unreadable, is listed by file with its error (never dropped silently); the ops rows
themselves are read later, by DuckDB (ngbench.report.query), from the files of the ok cells only."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ngbench.errors import UserError, first_line
from ngbench.record import OPS_FILE, SUMMARY_FILE, CellKey, read_summary
from ngbench.summary import halves

KEY_COLUMNS = CellKey.names()
# Without these an ops.parquet cannot be reported on (files of schema_version 1 name the group `group`).
REQUIRED_OPS_COLUMNS = ("run_id", "iteration", "op", "op_group", "is_gemm", "host_us", "device_us", "wall_us",
                        "wall_profiled_us")
FAILED_COLUMNS = ["dir", "file", *KEY_COLUMNS, "error"]


@dataclass
class Sweep:
    root: Path
    cells: object    # pandas.DataFrame: one row per ok cell (summary figures flattened; `ops_path`)
    failed: object   # pandas.DataFrame with FAILED_COLUMNS: failed cells, missing or unreadable files
    summaries: dict = field(default_factory=dict)   # cell dir (as in cells["dir"]) -> its summary.json, read once

    @property
    def ops_files(self) -> list[str]:
        return list(self.cells["ops_path"]) if len(self.cells) else []

    def drop_unreadable(self, errors: dict[str, str]) -> None:
        """Move the cells whose ops.parquet is a key of `errors` ({path: error}) to the failed ones."""
        import pandas as pd

        broken = self.cells["ops_path"].isin(list(errors))
        rows = [{**{k: row[k] for k in KEY_COLUMNS}, "dir": row["dir"], "file": OPS_FILE,
                 "error": f"{row['ops_path']} is not readable ({errors[row['ops_path']]}); delete the cell and "
                          "rerun it"} for row in self.cells[broken].to_dict("records")]
        self.failed = pd.concat([self.failed, pd.DataFrame(rows, columns=FAILED_COLUMNS)], ignore_index=True)
        self.cells = self.cells[~broken].reset_index(drop=True)


def run_dirs(root: str | Path, skip: Path | None = None) -> list[Path]:
    """The directories under `root` (itself included) that hold a summary.json or an ops.parquet, sorted;
    `skip` (the report's own output directory) left out."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root} does not exist or is not a directory; give a sweep or run directory "
                        "(outputs/sweeps/...)")
    skipped = skip.resolve() if skip is not None and skip.exists() else None
    found = {Path(path) for path, _, names in os.walk(root, followlinks=True)
             if SUMMARY_FILE in names or OPS_FILE in names}
    found = sorted(path for path in found if skipped is None or skipped not in (path / OPS_FILE).resolve().parents)
    if not found:
        raise UserError(f"{root} holds no {SUMMARY_FILE}: not an ngbench run or sweep directory")
    return found


def load_sweep(root: str | Path, skip: Path | None = None, found: list[Path] | None = None,
               columns=None) -> Sweep:
    """Every cell under `root` (a directory holding summary.json or ops.parquet), `skip` (the report's own
    output directory) left out; `found`: run_dirs(root, skip), when the caller has it already. `columns`: a
    function giving {ops.parquet path: its column names} of the cells' files, or None where they could not
    be read together (query.file_columns: DuckDB reads them on a thread while the summaries are read here);
    a file it does not vouch for is looked at here, alone."""
    import pandas as pd

    root = Path(root)
    found = run_dirs(root, skip) if found is None else found
    read = [(run_dir, *_read_summary(run_dir, root)) for run_dir in found]
    known = columns() if columns is not None else None
    cells, failed, summaries = [], [], {}
    for run_dir, summary, failure in read:
        problem = "" if failure else _ops_problem(run_dir / OPS_FILE, known)
        if failure or problem:
            failed.append(failure or _failure(run_dir, root, OPS_FILE, summary, problem))
            continue
        cells.append(cell_row(summary, run_dir, root, run_dir / OPS_FILE))
        summaries[cells[-1]["dir"]] = summary
    cells_frame = pd.DataFrame(cells)
    if len(cells_frame):
        cells_frame = cells_frame.sort_values(KEY_COLUMNS + ["seq_len", "run_id"], kind="stable").reset_index(drop=True)
    return Sweep(root=root, cells=cells_frame, failed=pd.DataFrame(failed, columns=FAILED_COLUMNS),
                 summaries=summaries)


def _failure(run_dir: Path, root: Path, file: str, summary: dict | None, error: str) -> dict:
    where = run_dir.relative_to(root).as_posix() if run_dir != root else "."
    return {"dir": where, "file": file, **{k: (summary or {}).get(k, "") for k in KEY_COLUMNS}, "error": error}


def _read_summary(run_dir: Path, root: Path) -> tuple[dict | None, dict | None]:
    """(summary, None) for a cell whose summary says ok, else (None, failure row)."""
    try:
        summary = read_summary(run_dir)
    except UserError as error:
        return None, _failure(run_dir, root, SUMMARY_FILE, None, str(error))
    if summary is None:
        return None, _failure(run_dir, root, SUMMARY_FILE, None, f"{run_dir / SUMMARY_FILE} is missing (the run "
                              "did not finish, or the file was deleted); rerun the cell")
    if not isinstance(summary, dict) or "status" not in summary:
        return None, _failure(run_dir, root, SUMMARY_FILE, None, f"{run_dir / SUMMARY_FILE} is not an ngbench "
                              "summary (no status)")
    if summary["status"] != "ok":
        error = first_line(Exception(summary.get("error") or f"status={summary['status']}"))
        return None, _failure(run_dir, root, SUMMARY_FILE, summary, error)
    return summary, None


def _ops_problem(path: Path, known: dict | None = None) -> str:
    """Why `path` cannot be reported on ('' when it can): missing, unreadable (truncated), or too old. `known`:
    {path: column names} of files read already; one of those with every required column is fine."""
    names = (known or {}).get(str(path))
    if names is not None and all(c in names for c in REQUIRED_OPS_COLUMNS):
        return ""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not path.exists():
        return f"{path} is missing (summary.json says ok); rerun the cell"
    try:
        schema = pq.read_schema(path)
    except (OSError, ValueError, pa.ArrowException) as exc:
        return f"{path} is not a readable Parquet file ({first_line(exc)}); delete the cell and rerun it"
    missing = [c for c in REQUIRED_OPS_COLUMNS if c not in schema.names]
    if missing:
        version = (schema.metadata or {}).get(b"ngbench_schema_version", b"1").decode()
        return f"{path} has schema_version {version} and lacks {', '.join(missing)}; rerun the cell"
    return ""


def cell_row(summary: dict, run_dir: Path, root: Path, ops_path: Path) -> dict:
    """One ok cell's row of the cells table: its key, clean latency with its CI, ratios, facts and warnings."""
    clean = summary.get("clean") or {}
    recon = summary.get("reconciliation") or {}
    facts = summary.get("model_facts") or {}
    environment = summary.get("environment") or {}
    ci = list(clean.get("ci95_ms") or [None, None])
    warnings = [str(w) for w in summary.get("warnings") or []]
    return {
        **{k: summary.get(k, "") for k in KEY_COLUMNS}, "run_id": summary.get("run_id", ""),
        "dir": run_dir.relative_to(root).as_posix() if run_dir != root else ".", "ops_path": str(ops_path),
        "clean_ms": clean.get("median_ms"), "clean_ci95_lo_ms": ci[0], "clean_ci95_hi_ms": ci[1],
        "clean_p10_ms": clean.get("p10_ms"), "clean_p90_ms": clean.get("p90_ms"), "clean_cv": clean.get("cv"),
        "clean_iters": clean.get("iters"), "reconstructed_ms": summary.get("reconstructed_ms"),
        "profiled_ms": summary.get("profiled_ms"),
        "reconstructed_over_clean": recon.get("reconstructed_over_clean"),
        "profiled_over_clean": recon.get("profiled_over_clean"), "device_busy_share": recon.get("device_busy_share"),
        "clean_halves": halves(recon.get("by_block") or []),
        "stalled_iterations": recon.get("stalled_iterations"), "profiled_iterations": recon.get("profiled_iterations"),
        "energy_j": (summary.get("energy") or {}).get("joules_per_inference"),
        "peak_memory_bytes": (summary.get("memory") or {}).get("peak_bytes"),
        "param_count": facts.get("param_count"), "seq_len": facts.get("seq_len"),
        "gpu": environment.get("gpu", ""), "cpu": environment.get("cpu", ""),
        "schema_version": summary.get("schema_version"), "warning_count": len(warnings),
        "warnings": "; ".join(warnings),
    }
