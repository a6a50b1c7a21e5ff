"""Write results whole (temp file + rename, mode as the umask gives) and print the console breakdown."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | Path, writer) -> None:
    """Call writer(tmp_path) then rename the temp file onto `path`, so readers never see half a file.
    The file gets the mode a plain open() would give it (0666 less the umask)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        writer(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def remove_stale_temporaries(directory: str | Path) -> list[Path]:
    """Delete the hidden temp files a killed write left behind (`.<name>.*.tmp`); returns them."""
    stale = [p for p in Path(directory).glob(".*.tmp") if p.is_file()]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def write_json(path: str | Path, data: dict) -> None:
    def writer(tmp):
        with open(tmp, "w") as handle:
            json.dump(data, handle, indent=2, default=str)
            handle.write("\n")

    atomic_write_bytes(path, writer)


def write_table(path: str | Path, frame, kind: str) -> None:
    """A pandas table as Parquet with the fixed Arrow schema of `kind` (ops | kernels)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ngbench.schema import arrow_schema

    table = pa.Table.from_pandas(frame, schema=arrow_schema(kind), preserve_index=False)
    atomic_write_bytes(path, lambda tmp: pq.write_table(table, tmp))


def print_breakdown(summary: dict) -> None:
    """A short table: per group wall (rebuilt) ms and share with its CI, device and host ms."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    groups = summary.get("groups", {})
    clean = summary.get("clean", {})
    variant = f" ({summary['variant']})" if summary.get("variant") not in (None, "", "full") else ""
    title = (f"{summary['model']}{variant} | {summary['flow']} | {summary['device']} | {summary['precision']}"
             f"{' | ' + summary['quant'] if summary.get('quant') else ''} | batch {summary['batch_size']}")
    table = Table(title=title)
    for column in ("group", "wall ms", "wall %", "95% CI", "profiled %", "device ms", "host ms", "ops"):
        table.add_column(column, justify="left" if column == "group" else "right")
    for group, row in sorted(groups.items(), key=lambda kv: -kv[1]["wall_ms"]):
        lo, hi = row.get("wall_pct_ci95", [float("nan")] * 2)
        table.add_row(group, f"{row['wall_ms']:.3f}", f"{row['wall_pct']:.1f}", f"{lo:.1f}-{hi:.1f}",
                      f"{row['wall_profiled_pct']:.1f}", f"{row['device_ms']:.3f}", f"{row['host_ms']:.3f}",
                      str(row["ops"]))
    console.print(table)
    recon = summary.get("reconciliation", {})
    ci = clean.get("ci95_ms", [float("nan")] * 2)
    console.print(
        f"clean {clean.get('median_ms', float('nan')):.3f} ms (95% CI {ci[0]:.3f}-{ci[1]:.3f}, "
        f"{clean.get('iters', 0)} inferences) | rebuilt {summary.get('reconstructed_ms') or float('nan'):.3f} ms "
        f"(rebuilt/clean {recon.get('reconstructed_over_clean', float('nan')):.3f}) | profiled "
        f"{summary.get('profiled_ms') or float('nan'):.3f} ms (profiled/clean "
        f"{recon.get('profiled_over_clean', float('nan')):.3f}) | device busy "
        f"{100 * recon.get('device_busy_share', float('nan')):.1f}% | GEMM {summary.get('gemm_pct') or 0.0:.1f}%")
    for warning in summary.get("warnings", []):
        console.print(f"[yellow]warning:[/yellow] {warning}")
    if summary.get("unmapped_ops"):
        console.print(f"unmapped ops (counted as Other): {summary['unmapped_ops']}")
