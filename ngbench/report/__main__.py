"""python -m ngbench.report <sweep or run dir> [--view wall|device|host] [--out DIR]

Writes CSV tables and PNG/PDF figures named after the paper's figures and tables.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ngbench.errors import UserError


def write_reports(sweep_dir: str | Path, view: str = "wall", out_dir: str | Path | None = None) -> list[Path]:
    """Every table and figure the sweep's cells support; returns the written paths."""
    import pandas as pd

    from ngbench.report import figures, tables
    from ngbench.report.load import breakdown, load_sweep

    sweep = load_sweep(sweep_dir)
    out = Path(out_dir or Path(sweep_dir) / "report")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    failed = pd.DataFrame(sweep.failed)
    failed.to_csv(out / "failed.csv", index=False)
    written.append(out / "failed.csv")
    if sweep.ops.empty:
        raise UserError(f"{sweep_dir}: no cell finished ok ({len(sweep.failed)} failed; see {out / 'failed.csv'})")
    table = breakdown(sweep.ops, view)
    for name, frame in (("cells", sweep.cells), ("breakdown", table),
                        ("table4", tables.dominant_non_gemm(table)), ("table1", tables.non_gemm_operators(sweep.ops))):
        frame.to_csv(out / f"{name}.csv", index=False)
        written.append(out / f"{name}.csv")
    written += figures.group_breakdown(table, out, "fig6")
    if sweep.cells["energy_j"].notna().any():
        written += figures.energy(sweep.cells, out, "fig5")
    if (sweep.cells["quant"].fillna("") != "").any():  # Figure 9: ms per group over sequence lengths
        with_seq = table.merge(sweep.cells[["run_id", "seq_len"]], on="run_id")
        x = "seq_len" if with_seq["seq_len"].notna().all() else "batch_size"
        written += figures.group_breakdown(with_seq, out, "fig9", value="ms", x=x)
    if sweep.cells["flow"].nunique() > 1:
        from ngbench.report.flows import write_flow_reports

        written += write_flow_reports(sweep.ops, out)
    from ngbench.report.kernels import write_kernel_reports

    written += write_kernel_reports([Path(d) for d in sweep.cells["dir"]], out)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ngbench.report", description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", help="a sweep directory (outputs/sweeps/...) or a single run directory")
    parser.add_argument("--view", default="wall", help="wall (default) | device | host")
    parser.add_argument("--out", default=None, help="output directory (default: <sweep_dir>/report)")
    args = parser.parse_args(argv)
    try:
        paths = write_reports(args.sweep_dir, args.view, args.out)
    except UserError as error:
        print(f"ngbench.report: error: {error}", file=sys.stderr)
        return 2
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
