"""Attribution: turn profiler events into op rows with host_us, device_us and wall_us.

Per iteration window W (the `ngbench::iteration#k` range, which ends with a device synchronise):
- the operators are the outermost `cpu_op` events on the iteration's thread (nested aten calls belong
  to their caller: `aten::linear` owns its `aten::addmm`);
- each device event (kernel, memcpy, memset) belongs to the operator whose host interval contains its
  launch (matched by correlation id); one launched outside every operator goes to an
  `[unattributed kernels]` row;
- host_us = the operator's host duration; device_us = the summed duration of its device events;
- wall_us = its device events' share of the busy timeline (time covered by several concurrent
  events is split evenly between them) + the part of every device-idle interval during which the host
  was inside the operator. Device-idle time while the host was in no operator is one `[idle]` row.
So Σ wall_us over an iteration equals the window exactly, whether the run is device-bound or host-bound.
With several GPUs the busy timeline is the union over all of them (the wall clock is idle only when no
GPU works); each GPU's own busy time is reported beside it (`busy_us_by_device`, keyed by Kineto's
device pid), and copies between GPUs are device events of the copy op that launched them (Memory).
On a CPU-only run there are no device events: the device is the host, and wall_us = host_us.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ngbench.schema import IDLE_OP, UNATTRIBUTED_OP
from ngbench.trace.kineto import DEVICE_CATEGORIES, LAUNCH_CATEGORIES, iteration_windows


@dataclass
class Attribution:
    """Op rows (EVENT_COLUMNS subset plus start/end) and per-iteration totals."""

    ops: object                 # pandas.DataFrame
    iteration_us: list[float]
    busy_us: list[float]
    busy_us_by_device: dict[str, float] | None = None  # summed over iterations, per GPU (Kineto pid)


def outermost(intervals):
    """Rows of `intervals` (sorted by ts) not contained in an earlier row: the top-level operators."""
    keep = np.zeros(len(intervals), dtype=bool)
    current_end = -np.inf
    for i, (start, end) in enumerate(zip(intervals["ts"].to_numpy(), intervals["end"].to_numpy())):
        if start >= current_end:
            keep[i] = True
            current_end = end
    return intervals[keep]


def window_ops(cpu_ops, lo: float, hi: float, tid):
    """The operators of one iteration window: the outermost `cpu_op` events of thread `tid` inside [lo, hi]
    (the timed and the annotation pass both take them from here, so their op sequences line up)."""
    in_window = cpu_ops[(cpu_ops["tid"] == tid) & (cpu_ops["ts"] >= lo) & (cpu_ops["end"] <= hi)]
    return outermost(in_window.sort_values(["ts", "end"], ascending=[True, False]))


def busy_shares(starts: np.ndarray, ends: np.ndarray, lo: float, hi: float):
    """Split the busy timeline inside [lo, hi] between possibly overlapping intervals.

    Returns (share of each interval, boundaries, idle flag of each elementary segment).
    """
    starts = np.clip(starts, lo, hi)
    ends = np.clip(ends, lo, hi)
    bounds = np.unique(np.concatenate([[lo, hi], starts, ends]))
    first = np.searchsorted(bounds, starts)
    last = np.searchsorted(bounds, ends)
    delta = np.zeros(len(bounds) + 1)
    np.add.at(delta, first, 1)
    np.add.at(delta, last, -1)
    active = np.cumsum(delta)[: len(bounds) - 1]
    lengths = np.diff(bounds)
    per_event = np.divide(lengths, active, out=np.zeros_like(lengths), where=active > 0)
    prefix = np.concatenate([[0.0], np.cumsum(per_event)])
    return prefix[last] - prefix[first], bounds, active == 0


def idle_inside(op_starts, op_ends, bounds, idle_flags):
    """Idle time of the timeline (bounds, idle_flags) that falls inside each [op_start, op_end]."""
    lengths = np.diff(bounds) * idle_flags
    cumulative = np.concatenate([[0.0], np.cumsum(lengths)])

    def idle_until(t):
        t = np.clip(t, bounds[0], bounds[-1])
        seg = np.clip(np.searchsorted(bounds, t, side="right") - 1, 0, len(bounds) - 2)
        return cumulative[seg] + (t - bounds[seg]) * idle_flags[seg]

    return idle_until(np.asarray(op_ends)) - idle_until(np.asarray(op_starts))


def _device_events_by_op(ops, launches, device_events):
    """Index into `ops` (or -1) of the operator that launched each device event."""
    launch_ts = dict(zip(launches["correlation"], launches["ts"]))
    starts = ops["ts"].to_numpy()
    ends = ops["end"].to_numpy()
    owner = np.full(len(device_events), -1)
    for i, corr in enumerate(device_events["correlation"].to_numpy()):
        ts = launch_ts.get(corr)
        if ts is None:
            continue
        j = np.searchsorted(starts, ts, side="right") - 1
        if j >= 0 and ts <= ends[j]:
            owner[i] = j
    return owner


def attribute_iteration(ops, launches, device_events, lo: float, hi: float, device_is_host: bool):
    """Op rows for one iteration window [lo, hi]; see the module docstring for the rules."""
    import pandas as pd

    ops = ops.sort_values("ts").reset_index(drop=True)
    host = (ops["end"].clip(upper=hi) - ops["ts"].clip(lower=lo)).clip(lower=0).to_numpy()
    rows = ops.assign(host_us=host, device_us=0.0, wall_us=0.0)
    rows["kernels"] = [[] for _ in range(len(rows))]
    if device_is_host:
        rows["device_us"] = host
        rows["wall_us"] = host
        busy = float(host.sum())
        _, bounds, idle = busy_shares(ops["ts"].to_numpy(), ops["end"].to_numpy(), lo, hi)
    else:
        owner = _device_events_by_op(ops, launches, device_events)
        shares, bounds, idle = busy_shares(device_events["ts"].to_numpy(), device_events["end"].to_numpy(), lo, hi)
        busy = float(shares.sum())
        extra = pd.DataFrame({"owner": owner, "dur": device_events["dur"].to_numpy(), "share": shares,
                              "name": device_events["name"].to_numpy()})
        attributed = extra[extra["owner"] >= 0].groupby("owner")
        rows.loc[attributed.groups.keys(), "device_us"] = attributed["dur"].sum()
        wall = np.zeros(len(rows))
        wall[list(attributed.groups.keys())] = attributed["share"].sum().to_numpy()
        rows["wall_us"] = wall
        for j, names in attributed["name"]:
            rows.at[j, "kernels"] = list(names)
        orphans = extra[extra["owner"] < 0]
        if len(orphans):
            rows = pd.concat([rows, pd.DataFrame([{
                "name": UNATTRIBUTED_OP, "ts": hi, "end": hi, "host_us": 0.0,
                "device_us": float(orphans["dur"].sum()), "wall_us": float(orphans["share"].sum()),
                "kernels": list(orphans["name"])}])], ignore_index=True)
    op_idle = idle_inside(ops["ts"].to_numpy(), ops["end"].to_numpy(), bounds, idle)
    rows.loc[: len(ops) - 1, "wall_us"] = rows.loc[: len(ops) - 1, "wall_us"].to_numpy() + op_idle
    total_idle = float((np.diff(bounds) * idle).sum())
    idle_row = {"name": IDLE_OP, "ts": hi, "end": hi, "host_us": 0.0, "device_us": 0.0,
                "wall_us": max(total_idle - float(op_idle.sum()), 0.0), "kernels": []}
    rows = pd.concat([rows, pd.DataFrame([idle_row])], ignore_index=True)
    return rows, busy


def attribute(events, device_is_host: bool) -> Attribution:
    """Attribute every iteration window found in a Kineto event table."""
    import pandas as pd

    launches = events[events["cat"].isin(LAUNCH_CATEGORIES)]
    device_events = events[events["cat"].isin(DEVICE_CATEGORIES)].sort_values("ts")
    cpu_ops = events[events["cat"] == "cpu_op"]
    frames, iteration_us, busy_us = [], [], []
    by_device: dict[str, float] = {}
    for index, lo, hi, tid in iteration_windows(events):
        ops = window_ops(cpu_ops, lo, hi, tid)
        in_launch = launches[(launches["ts"] >= lo) & (launches["ts"] <= hi)]
        mine = device_events[device_events["correlation"].isin(set(in_launch["correlation"]))]
        # only launches of the iteration's own thread can belong to its operators; device work launched
        # by another thread still counts as busy time, in the [unattributed kernels] row
        own = in_launch[in_launch["tid"] == tid]
        rows, busy = attribute_iteration(ops, own, mine, lo, hi, device_is_host)
        for device, events_of_device in mine.groupby("pid"):
            shares, _, _ = busy_shares(events_of_device["ts"].to_numpy(), events_of_device["end"].to_numpy(), lo, hi)
            by_device[device] = by_device.get(device, 0.0) + float(shares.sum())
        rows["iteration"] = index
        rows["seq"] = np.arange(len(rows))
        frames.append(rows)
        iteration_us.append(hi - lo)
        busy_us.append(busy)
    if not frames:
        raise RuntimeError("the profiler trace holds no ngbench::iteration ranges")
    table = pd.concat(frames, ignore_index=True).rename(columns={"name": "op"})
    return Attribution(table, iteration_us, busy_us, by_device)
