"""The rebuild re-run offline with other profiler-cost prices, against each run's own clean blocks (issue #9).

A run made with `save_trace=true` and NGBENCH_KEEP_BLOCK_TRACES=1 in the environment keeps every profiled
block's raw trace (trace-block<k>.json) beside its summary.json, whose `reconciliation.by_block` holds each
block's clean median. This script rebuilds every profiled iteration of those traces with the prices given
(by default the ones the run used, which reproduces its `reconstructed_over_clean`) and prints, per cell,
rebuilt/clean as the run computes it: the median over blocks of (median rebuilt iteration of the block /
the block's clean median). Stalled iterations are not left out here (the medians are robust to one).

    python benchmarks/rebuild_costs.py outputs/sweeps/fidelity                       # the run's own prices
    python benchmarks/rebuild_costs.py DIR --costs op=1.25,runtime=1.0,driver=2.34,host_slowdown=0.03
    python benchmarks/rebuild_costs.py DIR --calibration outputs/calibration/calibration-cuda-....json

It reads files only (no GPU needed): the prices are tried on the CPU machine over traces made on the GPU one.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

KINDS = ("op", "runtime", "driver", "node")


def parse_costs(text: str) -> dict[str, float]:
    """'op=1.2,runtime=0.9,host_slowdown=0.03' -> {'op': 1.2, 'runtime': 0.9, 'host_slowdown': 0.03}."""
    costs = {}
    for item in filter(None, text.split(",")):
        name, _, value = item.partition("=")
        if name not in (*KINDS, "host_slowdown"):
            raise SystemExit(f"--costs: unknown price {name!r}; valid: {', '.join((*KINDS, 'host_slowdown'))}")
        costs[name] = float(value)
    return costs


def costs_of(prices: dict[str, float]):
    from ngbench.trace.reconstruct import Costs

    per_kind = {k: v for k, v in prices.items() if k != "host_slowdown"}
    return Costs(per_kind, float(prices.get("host_slowdown", 0.0)))


def run_prices(summary: dict) -> dict[str, float]:
    calibration = summary.get("calibration") or {}
    return {**calibration.get("costs_us", {}), "host_slowdown": float(calibration.get("host_slowdown", 0.0))}


def run_scale(summary: dict) -> dict[int, float] | None:
    """The probe scale the run priced its blocks by (calibration.scaled_by_probe), None where it did not."""
    calibration = summary.get("calibration") or {}
    if not calibration.get("scaled_by_probe"):
        return None
    return probe_scale(calibration.get("host_probe_us"), summary["reconciliation"]["by_block"])


def probe_scale(calibrated_us: float | None, by_block: list[dict]) -> dict[int, float] | None:
    """ngbench.measure.calibration.probe_scale over a summary's blocks; None where the run was made before the
    probes were recorded."""
    from ngbench.measure.calibration import probe_scale as scale

    return scale(calibrated_us, {b["block"]: b.get("host_probe_us") for b in by_block}) or None


def within(ratios: list[float]) -> tuple[int, int, float]:
    """(within ±5%, within ±10%, median) of rebuilt/clean ratios: the fidelity check's counts."""
    return (sum(abs(r - 1) <= 0.05 for r in ratios), sum(abs(r - 1) <= 0.10 for r in ratios),
            statistics.median(ratios))


def block_windows(cell: Path) -> list[tuple[int, object]]:
    """(block, Window) of every profiled iteration in the cell's kept block traces."""
    from ngbench.trace import kineto
    from ngbench.trace.kineto import load_trace

    found = []
    traces = sorted(cell.glob("trace-block*.json"), key=lambda p: int(p.stem.removeprefix("trace-block")))
    for path in traces:
        block = int(path.stem.removeprefix("trace-block"))
        events = load_trace(str(path))
        for window in kineto.windows(events, events, device_is_host=False, first_index=len(found)):
            found.append((block, window))
    return found


def ratio(windows: list[tuple[int, object]], by_block: list[dict], prices: dict[str, float],
          scale: dict[int, float] | None = None) -> dict:
    """rebuilt/clean as the run computes it, with `prices`; and the rebuilt iteration's median in ms. `scale`
    (block -> factor) multiplies each block's per-record prices, not the slowdown."""
    from ngbench.trace.reconstruct import rebuild

    costs = dataclasses.replace(costs_of(prices), block_scale=scale or {})
    rebuilt: dict[int, list[float]] = {}
    for block, window in windows:
        new = rebuild(window, costs.for_block(block)).window
        rebuilt.setdefault(block, []).append(new.hi - new.lo)
    ratios = [statistics.median(rebuilt[b["block"]]) / 1000.0 / b["clean_ms"] for b in by_block if b["block"] in rebuilt]
    every = [v for values in rebuilt.values() for v in values]
    return {"ratio": statistics.median(ratios) if ratios else float("nan"),
            "rebuilt_ms": statistics.median(every) / 1000.0 if every else float("nan")}


def cells_under(roots: list[str]) -> list[Path]:
    return sorted({p.parent for root in roots for p in Path(root).rglob("trace-block0.json")
                   if (p.parent / "summary.json").is_file()})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="+", help="run or sweep directories holding trace-block*.json")
    parser.add_argument("--costs", action="append", default=[], help="prices to try, e.g. op=1.2,runtime=1.0")
    parser.add_argument("--calibration", action="append", default=[], help="a calibration cache file to try")
    parser.add_argument("--json", help="write the rows here too")
    args = parser.parse_args(argv)
    tried = {"run's own": None}
    tried.update({text: parse_costs(text) for text in args.costs})
    for path in args.calibration:
        stored = json.loads(Path(path).read_text())["costs_us"]
        tried[Path(path).name] = {k: float(v) for k, v in stored.items() if k in (*KINDS, "host_slowdown")}
    cells = cells_under(args.dirs)
    if not cells:
        print("no cell with trace-block0.json and summary.json under " + ", ".join(args.dirs), file=sys.stderr)
        return 2
    rows = []
    for cell in cells:
        summary = json.loads((cell / "summary.json").read_text())
        by_block = summary["reconciliation"]["by_block"]
        windows = block_windows(cell)
        row = {"cell": f"{summary['model']} {summary['precision']} b{summary['batch_size']}",
               "summary_ratio": summary["reconciliation"]["reconstructed_over_clean"]}
        for name, prices in tried.items():
            row[name] = ratio(windows, by_block, prices or run_prices(summary),
                              None if prices else run_scale(summary))["ratio"]
        rows.append(row)
        print("  ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row.values()), flush=True)
    for name in tried:
        within = sum(abs(r[name] - 1.0) <= 0.05 for r in rows)
        print(f"{name}: {within} of {len(rows)} within 0.95-1.05, median {statistics.median(r[name] for r in rows):.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
