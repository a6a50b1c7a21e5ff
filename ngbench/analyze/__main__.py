"""python -m ngbench.analyze TRACE [TRACE ...] [--out DIR] [--steps 2,4-6] [--model NAME] [--batch-size N]

Breaks PyTorch-profiler traces (.json or .json.gz, any torch.profiler settings) into GEMM and non-GEMM groups:
one run directory per trace (DIR itself for one trace, DIR/<trace name> for several).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ngbench.errors import UserError

DEFAULT_OUT = "outputs/analyze"


def run_dirs(traces: list[str], out: str | None) -> list[Path]:
    """Where each trace's results go: DIR for one trace, DIR/<name> (numbered when names repeat) for several."""
    from ngbench.analyze.summary import model_name

    names = [model_name(Path(t)) for t in traces]
    root = Path(out) if out else Path(DEFAULT_OUT) / (names[0] if len(traces) == 1 else "traces")
    if len(traces) == 1:
        return [root]
    seen: dict[str, int] = {}
    dirs = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        dirs.append(root / (name if seen[name] == 1 else f"{name}-{seen[name]}"))
    return dirs


def print_result(summary: dict, run_dir: Path) -> None:
    """A short per-group table of the trace's breakdown and where it was written."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"{summary['model']} | {summary['platform']} {summary['device']} | "
                        f"steps {summary['config']['steps']} | {summary['profiled_ms']:.3f} ms per step")
    for column in ("group", "wall ms", "wall %", "device ms", "host ms", "ops"):
        table.add_column(column, justify="left" if column == "group" else "right")
    for group, row in sorted(summary["groups"].items(), key=lambda kv: -kv[1]["wall_ms"]):
        table.add_row(group, f"{row['wall_ms']:.3f}", f"{row['wall_pct']:.1f}", f"{row['device_ms']:.3f}",
                      f"{row['host_ms']:.3f}", str(row["ops"]))
    console.print(table)
    phases = summary["flow_facts"].get("phases_ms", {})
    if len(phases) > 1:
        console.print("per phase (ms per step): " + ", ".join(f"{p} {ms:.3f}" for p, ms in phases.items()))
    console.print(f"written to {run_dir}")


def main(argv: list[str] | None = None) -> int:
    from ngbench.analyze.pipeline import analyze_trace, parse_steps

    parser = argparse.ArgumentParser(prog="python -m ngbench.analyze", description=__doc__.splitlines()[2])
    parser.add_argument("traces", nargs="+", metavar="TRACE", help="Chrome trace files (.json or .json.gz)")
    parser.add_argument("--out", default=None, help=f"output directory (default: {DEFAULT_OUT}/<trace name>)")
    parser.add_argument("--steps", default=None, help="ProfilerStep numbers to use, e.g. 3 or 2,4-6 (default: all)")
    parser.add_argument("--model", default=None, help="the model column (default: the trace file's name)")
    parser.add_argument("--batch-size", type=int, default=0, help="the batch_size column (default 0: unknown)")
    args = parser.parse_args(argv)
    failed = 0
    try:
        steps = parse_steps(args.steps)
    except UserError as error:
        print(f"ngbench.analyze: error: {error}", file=sys.stderr)
        return 2
    for trace, run_dir in zip(args.traces, run_dirs(args.traces, args.out)):
        try:
            summary = analyze_trace(trace, run_dir, steps, args.model, args.batch_size)
        except UserError as error:
            print(f"ngbench.analyze: error: {error}", file=sys.stderr)
            failed += 1
            continue
        for note in summary["warnings"][1:]:
            print(f"ngbench.analyze: note: {note}", file=sys.stderr)
        print_result(summary, run_dir)
    if failed and len(args.traces) > 1:
        print(f"ngbench.analyze: {failed} of {len(args.traces)} traces could not be analysed", file=sys.stderr)
    return 2 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
