"""How well a sweep's cells repeat themselves inside one run (issue #9): each cell's blocks split into its even
and its odd ones, and the two halves compared, from the summaries alone.

- clean: the median clean latency of the even blocks over that of the odd blocks. Both halves are the same
  cell in the same process, interleaved within a minute or two, so a ratio off 1 is the host alone.
- rebuilt/clean: the check's ratio (the median over blocks of rebuilt/clean) of the even half over the odd one.

A ±5% check on rebuilt/clean cannot pass more often than the clean latency itself repeats, whatever the
reconstruction does. Under independent blocks a half-against-half ratio spreads about twice as wide as one
estimate over all blocks, so its ±10% column is the one to set beside the check's ±5%.

    python benchmarks/noise_floor.py docs/results/fidelity-probe-h100 [more sweeps...]
    python benchmarks/noise_floor.py --by-noise docs/results/*-h100 docs/results/*-h200

--by-noise splits each sweep's cells by their clean halves (within ±10% of each other, "quiet", or not) and
counts in each part the cells whose rebuilt/clean as run is within ±5%: if the check's misses were the host's
noise, the quiet cells would pass and the others fail.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rebuild_costs import within  # noqa: E402

from ngbench.summary import halves  # noqa: E402


def sweep_rows(sweep: Path) -> dict:
    clean, check, as_run = [], [], []
    for path in sorted(sweep.glob("*/summary.json")):
        recon = json.loads(path.read_text()).get("reconciliation") or {}
        by_block = recon.get("by_block") or []
        ratio = halves(by_block, "clean_ms")
        if ratio is None:
            continue
        clean.append(ratio)
        check.append(halves(by_block, "reconstructed_over_clean"))
        as_run.append(recon["reconstructed_over_clean"])
    return {"cells": len(clean), "clean": clean, "check": check, "as_run": as_run}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweeps", nargs="+", type=Path)
    parser.add_argument("--by-noise", action="store_true",
                        help="the check as run, counted apart for cells whose clean halves agree within ±10% "
                             "and the others")
    args = parser.parse_args(argv)
    if args.by_noise:
        return by_noise([s for s in args.sweeps if s.is_dir()])
    print(f"{'sweep':28s} {'cells':>5s} | {'clean even/odd ±5% ±10%':>24s} | {'check even/odd ±5% ±10%':>24s} | "
          f"{'as run ±5% ±10%':>16s}")
    for sweep in args.sweeps:
        rows = sweep_rows(sweep)
        if not rows["cells"]:
            print(f"{sweep.name[:28]:28s} no cell with four blocks or more")
            continue
        parts = [within(rows[k])[:2] for k in ("clean", "check", "as_run")]
        print(f"{sweep.name[:28]:28s} {rows['cells']:5d} | {parts[0][0]:17d} {parts[0][1]:5d} | "
              f"{parts[1][0]:17d} {parts[1][1]:5d} | {parts[2][0]:9d} {parts[2][1]:5d}")
    return 0


def by_noise(sweeps: list[Path]) -> int:
    """Per sweep and in all: of the cells whose clean halves agree within ±10% (quiet) and of the others
    (noisy), how many read rebuilt/clean within ±5% as run."""
    print(f"{'sweep':28s} {'quiet: pass of':>15s} | {'noisy: pass of':>15s}")
    total = {True: [0, 0], False: [0, 0]}
    for sweep in sweeps:
        rows = sweep_rows(sweep)
        if not rows["cells"]:
            continue
        counts = {True: [0, 0], False: [0, 0]}
        for clean, as_run in zip(rows["clean"], rows["as_run"], strict=True):
            part = counts[abs(clean - 1.0) <= 0.10]
            part[0] += abs(as_run - 1.0) <= 0.05
            part[1] += 1
        for quiet in (True, False):
            total[quiet] = [a + b for a, b in zip(total[quiet], counts[quiet], strict=True)]
        print(_by_noise_row(sweep.name[:28], counts))
    print(_by_noise_row("all", total))
    return 0


def _by_noise_row(name: str, counts: dict) -> str:
    return f"{name:28s} {counts[True][0]:8d} {counts[True][1]:6d} | {counts[False][0]:8d} {counts[False][1]:6d}"


if __name__ == "__main__":
    sys.exit(main())
