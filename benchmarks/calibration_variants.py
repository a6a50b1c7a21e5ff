"""Which calibration workloads price the profiler as full-size models pay it? (issue #9)

The calibration fits per-record prices and a host slowdown on small workloads; the fidelity check then
rebuilds full-size models with them. This script separates the two so that many workload sets can be tried
against one machine's fidelity traces, offline:

    # on the GPU machine: the calibration's workloads (calibrate_torch), `--repeats` times, as JSON
    python benchmarks/calibration_variants.py measure --out loops.json --repeats 2
    # on the GPU machine, after `make fidelity` with save_trace=true and NGBENCH_KEEP_BLOCK_TRACES=1:
    # each cell's profiled iterations, parsed, with its per-block clean medians (a pickle, xz-compressed)
    python benchmarks/calibration_variants.py pack outputs/sweeps/fidelity --out fidelity-windows.pkl.xz
    # anywhere: fit each workload set on each repeat, rebuild every cell with those prices, count the cells
    # within 0.95-1.05 (and, with --grid, the best single price set in hindsight: the ceiling of the method)
    python benchmarks/calibration_variants.py evaluate loops.json fidelity-windows.pkl.xz [--grid]
    # or chosen price sets only (one price for every record kind, µs, and the host slowdown):
    python benchmarks/calibration_variants.py evaluate - fidelity-windows.pkl.xz --costs 0,0.35 --costs 0.3,0.3
    # each set also priced by the host's speed before each block over the calibration's (runs since host_probe_us):
    python benchmarks/calibration_variants.py evaluate - fidelity-windows.pkl.xz --costs 0.667,0.165 --scale-by-probe

The counts are the fidelity check's (rebuild_costs.py computes rebuilt/clean the way a run does).
"""

from __future__ import annotations

import argparse
import itertools
import json
import lzma
import pickle
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ngbench.measure import calibration  # noqa: E402  (after the checkout is on the path)

# the calibration's workloads before issue #9's last change, and those it added (ngbench.measure.calibration)
SMALL = ("view", "add", "linear", "mixed", "mixed_python", "conv_net", "attention_net")
LARGER = calibration.LARGER
SETS = {"small": SMALL, "small+larger": SMALL + LARGER, "larger": LARGER,
        "small+larger but long_mixed": SMALL + LARGER[:-1]}
RENAMED = {"modules_python": "module_stack"}     # its name in the first measurement (benchmarks/data/)


def measure(args) -> int:
    """The calibration as `calibration.mode=force` runs it (calibrate_torch), `--repeats` times."""
    rows = []
    for repeat in range(args.repeats):
        fitted, loops = calibration.calibrate_torch(args.device)
        for loop in loops:
            rows.append({"repeat": repeat, **loop.__dict__})
            print(f"{repeat} {loop.name:15s} extra {loop.extra_us:9.1f} µs  clean {loop.clean_us:9.1f} µs  "
                  + " ".join(f"{k} {v:.0f}" for k, v in loop.records.items()), flush=True)
        print(f"{repeat} the calibration's fit: {fitted}", flush=True)
    Path(args.out).write_text(json.dumps(rows, indent=1))
    return 0


def fit_per_kind(loops, kinds=("op", "runtime", "driver")) -> dict[str, float]:
    """The fit before (calibration method 1): a price per record kind and the slowdown, by the same robust fit."""
    used = [k for k in kinds if any(loop.records.get(k, 0) > 0 for loop in loops)] + ["host_slowdown"]
    rows = [[loop.clean_us if k == "host_slowdown" else loop.records.get(k, 0.0) for k in used] for loop in loops]
    fitted = calibration.robust_fit(rows, [loop.extra_us for loop in loops])
    return {k: round(float(v), 4) for k, v in zip(used, fitted, strict=True)}


def _pack_cell(cell: Path):
    import rebuild_costs as rc

    summary = json.loads((cell / "summary.json").read_text())
    name = f"{summary['model']} {summary['precision']} b{summary['batch_size']}"
    return (name, summary["reconciliation"]["by_block"], rc.block_windows(cell),
            summary["reconciliation"]["reconstructed_over_clean"], rc.run_prices(summary),
            (summary.get("calibration") or {}).get("host_probe_us"),
            bool((summary.get("calibration") or {}).get("scaled_by_probe")))


def pack(args) -> int:
    from multiprocessing import Pool

    import rebuild_costs as rc

    cells = rc.cells_under(args.dirs)
    with Pool(args.jobs) as pool:
        packed = pool.map(_pack_cell, cells)
    with lzma.open(args.out, "wb", preset=6) as out:
        pickle.dump(packed, out)
    print(f"{len(packed)} cells into {args.out}")
    return 0


SWEEPS: dict = {}


def probe_scale(cell: tuple) -> dict[int, float] | None:
    """rebuild_costs.probe_scale of a packed cell (packs made before the probes were recorded have five fields,
    before the rebuild used them six)."""
    import rebuild_costs as rc

    return rc.probe_scale(cell[5] if len(cell) > 5 else None, cell[1])


def run_probe_scale(cell: tuple) -> dict[int, float] | None:
    """Each block's probe over the run's own median probe: the host's swings within the run corrected, the
    price level left to the calibration."""
    import statistics

    import rebuild_costs as rc

    return rc.probe_scale(statistics.median(b.get("host_probe_us") or 0.0 for b in cell[1]), cell[1])


def _counts(job) -> tuple[int, int, float]:
    """(within ±5%, within ±10%, median rebuilt/clean) of one sweep's cells with one price set."""
    import rebuild_costs as rc

    sweep, prices, by_probe = job     # by_probe "own": as the run did (scaled where its summary says so)
    ratios = []
    for cell in SWEEPS[sweep]:
        _, by_block, windows, *_ = cell
        scaled = (len(cell) > 6 and cell[6]) if by_probe == "own" else by_probe
        scale = run_probe_scale(cell) if scaled == "run" else probe_scale(cell) if scaled else None
        ratios.append(rc.ratio(windows, by_block, prices, scale)["ratio"])
    return rc.within(ratios)


def evaluate(args) -> int:
    from multiprocessing import Pool

    rows = json.loads(Path(args.loops).read_text()) if args.loops != "-" else []
    sweeps = {}
    for path in args.windows:
        opener = lzma.open if path.endswith(".xz") else open
        with opener(path, "rb") as handle:
            sweeps[Path(path).name] = pickle.load(handle)
    tried = {}
    for repeat in sorted({r["repeat"] for r in rows}):
        for set_name, names in SETS.items():
            loops = [calibration.Loop(name, r["extra_us"], r["clean_us"], r["records"]) for r in rows
                     if r["repeat"] == repeat and (name := RENAMED.get(r["name"], r["name"])) in names]
            if loops:
                tried[f"per kind, {set_name} (repeat {repeat})"] = fit_per_kind(loops)
                tried[f"one price, {set_name} (repeat {repeat})"] = calibration.fit_costs(loops,
                                                                                          calibration.TORCH_KINDS)
    for sweep, cells in sweeps.items():
        tried[f"{sweep}: the run's own"] = cells[0][4]
    for text in args.costs:
        price, slowdown = (float(v) for v in text.split(","))
        tried[f"price={price} s={slowdown}"] = {"op": price, "runtime": price, "driver": price, "host_slowdown": slowdown}
    if args.grid:
        for op, rt, slow in itertools.product((0.5, 1.0, 1.5, 2.0, 2.5), (0.0, 1.5, 3.0, 4.5),
                                           (0.0, 0.1, 0.2, 0.3, 0.4)):
            tried[f"grid op={op} rt=drv={rt} s={slow}"] = {"op": op, "runtime": rt, "driver": rt, "host_slowdown": slow}
    if args.scale_by_probe or args.scale_by_run_probe:
        for sweep, cells in sweeps.items():
            unprobed = sum(probe_scale(cell) is None for cell in cells)
            if unprobed:
                print(f"{sweep}: {unprobed} of {len(cells)} cells have no host_probe_us: priced unscaled")
    plain = [(label, prices) for label, prices in tried.items() if not label.endswith(": the run's own")]
    if args.scale_by_probe:
        tried.update({f"{label} x probe": prices for label, prices in plain})
    if args.scale_by_run_probe:
        tried.update({f"{label} x run probe": prices for label, prices in plain})

    def how(label: str):
        return ("own" if label.endswith(": the run's own") else "run" if label.endswith(" x run probe")
                else label.endswith(" x probe"))

    jobs = [(sweep, prices, how(label)) for label, prices in tried.items() for sweep in sweeps]
    SWEEPS.update(sweeps)     # the forked workers read them from here
    with Pool(args.jobs) as pool:
        counted = iter(pool.map(_counts, jobs))
    print(f"{'prices':48s} " + "  ".join(f"{s[:24]:>24s}" for s in sweeps))
    for label, prices in tried.items():
        cols = [next(counted) for _ in sweeps]
        shown = {k: round(v, 3) for k, v in prices.items() if v}
        print(f"{label:48s} " + "  ".join(f"{n5:2d}/{n10:2d} of {len(cells)} m{median:.3f}".rjust(24)
                                         for (n5, n10, median), cells in zip(cols, sweeps.values(), strict=True))
              + f"  {shown}", flush=True)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("measure")
    m.add_argument("--out", required=True)
    m.add_argument("--repeats", type=int, default=2)
    m.add_argument("--device", default="cuda:0")
    p = sub.add_parser("pack")
    p.add_argument("dirs", nargs="+")
    p.add_argument("--out", required=True)
    p.add_argument("--jobs", type=int, default=8)
    e = sub.add_parser("evaluate")
    e.add_argument("loops", help="measure's JSON, or - for none")
    e.add_argument("windows", nargs="+")
    e.add_argument("--grid", action="store_true")
    e.add_argument("--costs", action="append", default=[], metavar="PRICE,SLOWDOWN",
                   help="one price for every record kind (µs) and the host slowdown, e.g. 0,0.35; repeatable")
    e.add_argument("--scale-by-probe", action="store_true",
                   help="each set also with its record prices times each block's host_probe_us over the calibration's")
    e.add_argument("--scale-by-run-probe", action="store_true",
                   help="each set also with its record prices times each block's host_probe_us over the run's median")
    e.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    return {"measure": measure, "pack": pack, "evaluate": evaluate}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
