"""How well a sweep's cells repeat themselves inside one run (issue #9): each cell's blocks split into its even
and its odd ones, and the two halves compared, from the summaries alone.

- clean: the median clean latency of the even blocks over that of the odd blocks. Both halves are the same
  cell in the same process, interleaved within a minute or two, so a ratio off 1 is the host alone.
- rebuilt/clean: the check's ratio (the median over blocks of rebuilt/clean) of the even half over the odd one.

A ±5% check on rebuilt/clean cannot pass more often than the clean latency itself repeats, whatever the
reconstruction does. Under independent blocks a half-against-half ratio spreads about twice as wide as one
estimate over all blocks, so its ±10% column is the one to set beside the check's ±5%.

    python benchmarks/noise_floor.py docs/results/fidelity-probe-h100 [more sweeps...]
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
    args = parser.parse_args(argv)
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


if __name__ == "__main__":
    sys.exit(main())
