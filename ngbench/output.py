"""Write run results whole (temp file + rename) and print the console breakdown."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def atomic_write_bytes(path: str | Path, writer) -> None:
    """Call writer(tmp_path) then rename the temp file onto `path`, so readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        writer(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(path: str | Path, data: dict) -> None:
    def writer(tmp):
        with open(tmp, "w") as handle:
            json.dump(data, handle, indent=2, default=str)
            handle.write("\n")

    atomic_write_bytes(path, writer)


def write_parquet(path: str | Path, table) -> None:
    atomic_write_bytes(path, lambda tmp: table.to_parquet(tmp, index=False))


def read_summary(run_dir: str | Path) -> dict | None:
    path = Path(run_dir) / "summary.json"
    if not path.exists():
        return None
    with open(path) as handle:
        return json.load(handle)


def print_breakdown(summary: dict) -> None:
    """A short table: per group wall/device/host ms and share of the wall view."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    groups = summary.get("groups", {})
    clean = summary.get("clean", {})
    title = (f"{summary['model']} | {summary['flow']} | {summary['device']} | {summary['precision']}"
             f"{' | ' + summary['quant'] if summary.get('quant') else ''} | batch {summary['batch_size']}")
    table = Table(title=title)
    for column in ("group", "wall ms", "wall %", "device ms", "host ms", "ops"):
        table.add_column(column, justify="left" if column == "group" else "right")
    for group, row in sorted(groups.items(), key=lambda kv: -kv[1]["wall_ms"]):
        table.add_row(group, f"{row['wall_ms']:.3f}", f"{row['wall_pct']:.1f}", f"{row['device_ms']:.3f}",
                      f"{row['host_ms']:.3f}", str(row["ops"]))
    console.print(table)
    recon = summary.get("reconciliation", {})
    console.print(
        f"clean latency {clean.get('median_ms', float('nan')):.3f} ms (p10 {clean.get('p10_ms', float('nan')):.3f}, "
        f"p90 {clean.get('p90_ms', float('nan')):.3f}) | profiled {summary['profiled_ms']:.3f} ms | "
        f"profiled/clean {recon.get('profiled_over_clean', float('nan')):.3f} | "
        f"sum wall/profiled {recon.get('wall_over_profiled', float('nan')):.4f} | "
        f"device busy {100 * recon.get('device_busy_share', float('nan')):.1f}% | GEMM {summary['gemm_pct']:.1f}%")
    for warning in summary.get("warnings", []):
        console.print(f"[yellow]warning:[/yellow] {warning}")
    if summary.get("unmapped_ops"):
        console.print(f"unmapped ops (counted as Other): {summary['unmapped_ops']}")
