"""Where and when the host is slow (issue #9): the host probe (`ngbench.measure.timing.host_probe`, µs per
one-element CPU add) sampled over time on whatever CPU the scheduler picks, then pinned to each CPU in turn.

On the H100 host the probe read about 1 µs or about 2 µs between blocks, and clean latency moved with it. This
tells whether the slow readings belong to some CPUs (then `pin_cpus` avoids them) or come and go in time on all
of them (then pinning cannot help), and prints the CPUs it would pin to.

    python benchmarks/host_speed.py [--seconds 20] [--per-cpu-s 1.5] [--out host-speed.json]
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ngbench.measure.timing import host_probe  # noqa: E402


def current_cpu() -> int:
    """The CPU this process last ran on (field 39 of /proc/self/stat)."""
    with open("/proc/self/stat") as handle:
        return int(handle.read().rsplit(")", 1)[1].split()[36])


def sample(seconds: float) -> list[dict]:
    """One probe (one loop of 200 calls) every few ms for `seconds`: time, µs per call, CPU."""
    out, began = [], time.perf_counter()
    while (now := time.perf_counter() - began) < seconds:
        out.append({"t_s": round(now, 3), "us": host_probe(repeats=1)["host_probe_us"], "cpu": current_cpu()})
        time.sleep(0.005)
    return out


def siblings(cpu: int) -> str:
    path = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list")
    return path.read_text().strip() if path.exists() else "?"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="unpinned sampling time")
    parser.add_argument("--per-cpu-s", type=float, default=1.5, help="sampling time pinned to each CPU")
    parser.add_argument("--pick", type=int, default=2, help="how many CPUs to recommend")
    parser.add_argument("--out")
    args = parser.parse_args(argv)

    cpus = sorted(os.sched_getaffinity(0))
    host_probe()                                                   # warm up the dispatcher
    free = sample(args.seconds)
    values = [s["us"] for s in free]
    fast = min(values)
    slow_at = 1.5 * statistics.median(sorted(values)[: max(1, len(values) // 10)])
    print(f"unpinned, {len(free)} probes over {args.seconds:.0f} s: median {statistics.median(values):.2f} µs, "
          f"p10 {statistics.quantiles(values, n=10)[0]:.2f}, p90 {statistics.quantiles(values, n=10)[-1]:.2f}, "
          f"min {fast:.2f}; slow (> {slow_at:.2f} µs): {sum(v > slow_at for v in values)} of {len(values)}")
    # how long the slow/fast spells last: (slow?, probes in a row)
    runs = [(state, len(list(group))) for state, group in itertools.groupby(s["us"] > slow_at for s in free)]
    spell = {k: [n for state, n in runs if state == k] for k in (False, True)}
    print("spells (probes in a row): fast " + (f"median {statistics.median(spell[False])}, max {max(spell[False])}"
          if spell[False] else "none") + "; slow " +
          (f"median {statistics.median(spell[True])}, max {max(spell[True])}" if spell[True] else "none"))
    by_cpu_free: dict[int, list[float]] = {}
    for s in free:
        by_cpu_free.setdefault(s["cpu"], []).append(s["us"])
    print("unpinned, by the CPU it ran on: " + ", ".join(
        f"{c}: {len(v)}x med {statistics.median(v):.2f} slow {sum(x > slow_at for x in v)}"
        for c, v in sorted(by_cpu_free.items())))

    pinned = {}
    for cpu in cpus:
        os.sched_setaffinity(0, {cpu})
        rows = sample(args.per_cpu_s)
        us = [r["us"] for r in rows]
        pinned[cpu] = {"median_us": statistics.median(us), "p90_us": statistics.quantiles(us, n=10)[-1],
                       "slow": sum(v > slow_at for v in us), "probes": len(us), "siblings": siblings(cpu)}
    os.sched_setaffinity(0, set(cpus))
    print(f"{'cpu':>4s} {'siblings':>9s} {'median µs':>10s} {'p90 µs':>8s} {'slow':>9s}")
    for cpu, row in pinned.items():
        print(f"{cpu:4d} {row['siblings']:>9s} {row['median_us']:10.2f} {row['p90_us']:8.2f} "
              f"{row['slow']:4d}/{row['probes']:<4d}")
    ranked = sorted(pinned, key=lambda c: (pinned[c]["slow"] / pinned[c]["probes"], pinned[c]["p90_us"]))
    pick, used = [], set()
    for cpu in ranked:                                             # distinct physical cores first
        if pinned[cpu]["siblings"] not in used:
            pick.append(cpu)
            used.add(pinned[cpu]["siblings"])
        if len(pick) == args.pick:
            break
    print("pick: " + ",".join(map(str, pick)))
    if args.out:
        Path(args.out).write_text(json.dumps({"unpinned": free, "pinned": pinned, "pick": pick,
                                              "slow_above_us": slow_at}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
