"""Other profiler-cost prices tried on sweeps whose block traces were not kept, from their summaries alone (issue #9).

rebuild_costs.py re-runs the rebuild over kept block traces. Most sweeps keep none, but each summary holds, per
profiled block, the profiled, rebuilt and clean medians (`reconciliation.by_block`), and the profiler cost the run
removed per iteration (`record_cost_ms`). Where the host sets the pace, the rebuild is close to

    rebuilt ≈ (profiled - N x price) / (1 + host_slowdown)

with N the records per iteration (record_cost_ms / the run's one price, calibration method 2). This script moves
each block's own rebuilt median by the change that formula gives for other prices, and prints, per price set, how
many cells land within 0.95-1.05 and 0.90-1.10 of their clean median (the median over blocks, as a run computes it).
Cells whose device was busy for more than --busy-max of the iteration keep the run's own ratio: there the rebuilt
iteration follows the kernels, not the host.

    python benchmarks/reprice_summaries.py docs/results/holdout-oneprice-h100 docs/results/fidelity-oneprice2-h100
    python benchmarks/reprice_summaries.py docs/results/fidelity-oneprice3-h100 --costs price=0,host_slowdown=0.35

With --scale-by-probe, each block's price (the tried one; the run's own stays as the run used it) is multiplied by
the host's speed probed before that block over the speed probed at calibration (`host_probe_us`, in summaries
made since 2026-11-27's sixth session; cells without them are left as the run made them).

At the run's own prices it returns the run's own counts; elsewhere it is a first-order estimate (the kept traces
of fidelity-oneprice3-h100 check it: see benchmarks/data/h100-reprice.txt).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import rebuild_costs as rc  # beside this script, on the path when it runs

DEFAULT_PRICES = ((0.667, 0.165), (0.216, 0.376), (0.059, 0.35), (0.3, 0.3), (0.0, 0.30), (0.0, 0.33),
                  (0.0, 0.35), (0.0, 0.37), (0.0, 0.40))


def parse_costs(text: str) -> tuple[float, float]:
    """'price=0.3,host_slowdown=0.3' -> (0.3, 0.3)."""
    given = dict(item.partition("=")[::2] for item in filter(None, text.split(",")))
    unknown = set(given) - {"price", "host_slowdown"}
    if unknown:
        raise SystemExit(f"--costs: unknown name {sorted(unknown)[0]!r}; valid: price, host_slowdown")
    return float(given.get("price", 0.0)), float(given.get("host_slowdown", 0.0))


def cells(sweep: Path) -> list[dict]:
    """The sweep's ok cells that a one-price calibration rebuilt."""
    found = []
    for path in sorted(sweep.rglob("summary.json")):
        summary = json.loads(path.read_text())
        calibration = summary.get("calibration") or {}
        prices = set((calibration.get("costs_us") or {}).values())
        if summary.get("status") != "ok" or len(prices) != 1:
            continue
        found.append({"summary": summary, "price": prices.pop(), "slowdown": float(calibration.get("host_slowdown", 0)),
                      "probe_scale": rc.probe_scale(calibration.get("host_probe_us"),
                                                    summary["reconciliation"]["by_block"]),
                      "scaled": bool(calibration.get("scaled_by_probe"))})
    return found


def ratio(cell: dict, price: float, slowdown: float, busy_max: float, by_probe: bool | None = False) -> float:
    """rebuilt/clean of one cell with other prices: each block's rebuilt median moved by the host-bound formula;
    `by_probe`: the price scaled by each block's host speed over the calibration's (None: as the run did)."""
    rec = cell["summary"]["reconciliation"]
    if by_probe is None:
        by_probe = cell["scaled"]
    if by_probe and cell["probe_scale"] is None:
        return rec["reconstructed_over_clean"]
    if rec["device_busy_share"] > busy_max or not cell["price"]:
        return rec["reconstructed_over_clean"]
    def scale(block: int, scaled: bool) -> float:
        return cell["probe_scale"][block] if scaled and cell["probe_scale"] else 1.0

    if cell["scaled"]:   # the run priced each block by its probe: count its records block by block
        records = statistics.median(it["record_cost_us"] / (cell["price"] * scale(it["block"], True)) / 1000.0
                                    for it in cell["summary"]["iterations"] if not it["stalled"])
    else:
        records = rec["record_cost_ms"] / cell["price"]        # records per iteration, in thousands (ms/µs)

    def host_bound(profiled: float, p: float, s: float) -> float:
        return (profiled - records * p) / (1.0 + s)

    return statistics.median(
        (block["rebuilt_ms"] + host_bound(block["profiled_ms"], price * scale(block["block"], by_probe), slowdown)
         - host_bound(block["profiled_ms"], cell["price"] * scale(block["block"], cell["scaled"]), cell["slowdown"]))
        / block["clean_ms"] for block in rec["by_block"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweeps", nargs="+", help="sweep directories of a one-price (method 2) calibration")
    parser.add_argument("--costs", action="append", default=[], help="price=<µs>,host_slowdown=<s>; repeatable")
    parser.add_argument("--busy-max", type=float, default=0.3)
    parser.add_argument("--scale-by-probe", action="store_true",
                        help="each block's price times its host_probe_us over the calibration's")
    args = parser.parse_args(argv)
    sweeps = {Path(s).name: cells(Path(s)) for s in args.sweeps}
    empty = [name for name, found in sweeps.items() if not found]
    if empty:
        print(f"no ok cell with a one-price calibration under {', '.join(empty)}", file=sys.stderr)
        return 2
    tried = [("the run's own", None)] + [(f"price={p} s={s}", (p, s))
                                         for p, s in (map(parse_costs, args.costs) if args.costs else DEFAULT_PRICES)]
    if args.scale_by_probe:
        for name, found in sweeps.items():
            unprobed = sum(c["probe_scale"] is None for c in found)
            if unprobed:
                print(f"{name}: {unprobed} of {len(found)} cells have no host_probe_us (made before it was "
                      "recorded): left as the run made them")
    print(f"{'prices':22s}" + "".join(f"{name[:26]:>28s}" for name in sweeps))
    for label, prices in tried:
        row = ""
        for found in sweeps.values():
            ratios = [ratio(c, *(prices or (c["price"], c["slowdown"])), args.busy_max,
                            args.scale_by_probe if prices else None) for c in found]
            n5, n10, median = rc.within(ratios)
            row += f"{n5:2d}/{n10:2d} of {len(ratios)} m{median:.3f}".rjust(28)
        print(f"{label:22s}{row}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
