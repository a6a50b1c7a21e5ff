"""Attribution: turn one profiled iteration (a `Window`) into op rows with host_us, device_us and wall_us,
and kernel rows that say which operator each device activity belongs to. Every flow's profile ends here.

Per iteration window [lo, hi] (a `ProfilerStep#k` range, which ends with a device synchronise):
- the operators are the outermost host ranges of the iteration's thread (nested aten calls belong to
  their caller: `aten::linear` owns its `aten::addmm`); ONNX Runtime's nodes are operators too;
- each device activity (kernel, memcpy, memset) belongs to the operator whose host interval contains its
  launch (matched by correlation id; on the launch's own thread when the window has several); one
  launched outside every operator goes to an `[unattributed kernels]` row;
- host_us = the operator's host duration; device_us = the summed duration of its device activity;
- wall_us = its device activity's share of the busy timeline (time covered by several concurrent
  activities is split evenly between them) + the part of every device-idle interval during which the host
  was inside the operator (split evenly between operators of several threads that overlap: a training
  step's backward thread). Device-idle time while the host was in no operator is one `[idle]` row.
So Σ wall_us over an iteration equals the window exactly, whether the run is device-bound or host-bound.
With several GPUs the busy timeline is the union over all of them (the wall clock is idle only when no
GPU works); each GPU's own busy time is reported beside it (`busy_us_by_device`, keyed by device), and
copies between GPUs are device activity of the copy op that launched them (Memory).
On a CPU-only run there is no device activity: the device is the host, and wall_us = host_us.

The same function runs on the raw profiled timeline (`wall_profiled_us`) and on the timeline rebuilt
without the profiler's own cost (`ngbench.trace.reconstruct`, which gives `wall_us`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ngbench.schema import IDLE_OP, UNATTRIBUTED_OP

KERNEL_COLUMNS = ["op_seq", "kernel", "activity", "stream", "device_index", "device_us", "start_us"]


@dataclass
class Window:
    """One profiled iteration, in the attribution's terms (all times in microseconds on one clock).

    ops: top-level operators, sorted by ts: name, ts, end, plus columns passed through to the op rows;
    launches: the iteration thread's runtime/driver calls: name, kind (runtime | driver), ts, end, correlation;
    device: device activity launched in the window (any thread): name, cat, ts, end, dur, stream, pid,
        correlation;
    records: every host record the profiler wrote on the iteration's thread, nested ones included:
        name, kind (op | runtime | driver | node), ts, end. Only the reconstruction reads them.
    """

    index: int
    lo: float
    hi: float
    ops: object
    launches: object
    device: object
    records: object = None
    device_is_host: bool = False
    notes: dict = field(default_factory=dict)

    def moved(self, **changes) -> Window:
        return replace(self, **changes)


@dataclass
class Attributed:
    """The attribution of one window: op rows, kernel rows and busy time."""

    rows: object                   # pandas.DataFrame: ops' columns + host_us, device_us, wall_us, kernels, seq
    kernels: object                # pandas.DataFrame: KERNEL_COLUMNS
    busy_us: float
    busy_us_by_device: dict[str, float]


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
    starts = np.clip(np.asarray(starts, dtype=float), lo, hi)
    ends = np.clip(np.asarray(ends, dtype=float), lo, hi)
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


def idle_shares(op_starts, op_ends, bounds, idle_flags) -> np.ndarray:
    """Idle time of the timeline (bounds, idle_flags) inside each [op_start, op_end]; where operators of
    several threads overlap, each idle stretch is split evenly between them (so no idle time is counted
    twice). For operators that do not overlap this is the idle time inside each one."""
    lengths = np.diff(bounds) * idle_flags
    cumulative = np.concatenate([[0.0], np.cumsum(lengths)])

    def idle_until(t):
        t = np.clip(t, bounds[0], bounds[-1])
        seg = np.clip(np.searchsorted(bounds, t, side="right") - 1, 0, len(bounds) - 2)
        return cumulative[seg] + (t - bounds[seg]) * idle_flags[seg]

    starts = np.clip(np.asarray(op_starts, dtype=float), bounds[0], bounds[-1])
    ends = np.clip(np.asarray(op_ends, dtype=float), bounds[0], bounds[-1])
    edges = np.unique(np.concatenate([bounds, starts, ends]))
    first, last = np.searchsorted(edges, starts), np.searchsorted(edges, ends)
    delta = np.zeros(len(edges) + 1)
    np.add.at(delta, first, 1)
    np.add.at(delta, last, -1)
    active = np.cumsum(delta)[: len(edges) - 1]
    idle = np.diff(idle_until(edges))
    per_piece = np.divide(idle, active, out=np.zeros_like(idle), where=active > 0)
    prefix = np.concatenate([[0.0], np.cumsum(per_piece)])
    return prefix[last] - prefix[first]


def launch_owner(ops, launches, device) -> np.ndarray:
    """Index into `ops` (or -1) of the operator that launched each device activity: the operator whose
    host interval contains the launch, on the launch's own thread when ops and launches carry `tid`."""
    import pandas as pd

    owner = np.full(len(device), -1)
    if not len(device) or not len(ops) or not len(launches):
        return owner
    by_thread = "tid" in ops.columns and "tid" in launches.columns
    first = ~pd.Index(launches["correlation"]).duplicated()
    calls = pd.Index(launches["correlation"].to_numpy()[first])
    position = calls.get_indexer(device["correlation"].to_numpy())
    found = position >= 0
    launch_ts = launches["ts"].to_numpy()[first][np.clip(position, 0, None)]
    launch_tid = np.asarray(launches["tid"].to_numpy()[first], dtype=object)[np.clip(position, 0, None)] \
        if by_thread else None
    groups = ops.groupby("tid", sort=False, observed=True).indices.items() if by_thread else [(None, np.arange(len(ops)))]
    starts_all, ends_all = ops["ts"].to_numpy(), ops["end"].to_numpy()
    for tid, rows in groups:
        selected = np.flatnonzero(found & (launch_tid == tid)) if by_thread else np.flatnonzero(found)
        ts = launch_ts[selected]
        j = np.searchsorted(starts_all[rows], ts, side="right") - 1
        inside = (j >= 0) & (ts <= ends_all[rows][np.clip(j, 0, None)])
        owner[selected[inside]] = rows[j[inside]]
    return owner


def kernel_lists(owner: np.ndarray, names: np.ndarray, count: int) -> list[list[str]]:
    """The names of the device activities of each of `count` operators (owner -1: none), in launch order."""
    lists: list[list[str]] = [[] for _ in range(count)]
    order = np.argsort(owner, kind="stable")
    order = order[owner[order] >= 0]
    for j, name in zip(owner[order].tolist(), names[order].tolist()):
        lists[j].append(name)
    return lists


def _kernel_rows(device, owner: np.ndarray, unattributed_seq: int, lo: float):
    import pandas as pd

    return pd.DataFrame({
        "op_seq": np.where(owner >= 0, owner, unattributed_seq).astype(int),
        "kernel": device["name"].astype(str).to_numpy(),
        "activity": device["cat"].astype(str).to_numpy(),
        "stream": device["stream"].astype(int).to_numpy(),
        "device_index": device["pid"].astype(str).to_numpy(),
        "device_us": device["dur"].astype(float).to_numpy(),
        "start_us": (device["ts"].astype(float) - lo).to_numpy(),
    }, columns=KERNEL_COLUMNS)


def attribute_window(window: Window) -> Attributed:
    """Op rows and kernel rows of one window; see the module docstring for the rules."""
    import pandas as pd

    lo, hi = window.lo, window.hi
    ops = window.ops.sort_values("ts", kind="stable").reset_index(drop=True)
    host = (ops["end"].clip(upper=hi) - ops["ts"].clip(lower=lo)).clip(lower=0).to_numpy()
    rows = ops.assign(host_us=host, device_us=0.0, wall_us=0.0)
    extra_rows = []
    if window.device_is_host:
        # the host is the device: an operator's wall time is its share of the host's busy timeline (its host
        # time, unless operators of several threads overlap)
        shares, bounds, idle = busy_shares(ops["ts"].to_numpy(), ops["end"].to_numpy(), lo, hi)
        rows["device_us"] = host
        rows["wall_us"] = shares
        rows["kernels"] = [[] for _ in range(len(rows))]
        busy = float(shares.sum())
        kernels = pd.DataFrame(columns=KERNEL_COLUMNS)
        by_device: dict[str, float] = {}
    else:
        device = window.device.sort_values("ts", kind="stable").reset_index(drop=True)
        owner = launch_owner(ops, window.launches, device)
        shares, bounds, idle = busy_shares(device["ts"].to_numpy(), device["end"].to_numpy(), lo, hi)
        busy = float(shares.sum())
        attributed = pd.DataFrame({"owner": owner, "dur": device["dur"].to_numpy(), "share": shares,
                                   "name": np.asarray(device["name"].to_numpy(), dtype=object)})
        mine = attributed[attributed["owner"] >= 0]
        device_us, wall = np.zeros(len(rows)), np.zeros(len(rows))
        np.add.at(device_us, mine["owner"].to_numpy(), mine["dur"].to_numpy())
        np.add.at(wall, mine["owner"].to_numpy(), mine["share"].to_numpy())
        rows["device_us"] = device_us
        rows["wall_us"] = wall
        rows["kernels"] = kernel_lists(owner, attributed["name"].to_numpy(), len(rows))
        orphans = attributed[attributed["owner"] < 0]
        if len(orphans):
            extra_rows.append({"name": UNATTRIBUTED_OP, "ts": hi, "end": hi, "host_us": 0.0,
                               "device_us": float(orphans["dur"].sum()), "wall_us": float(orphans["share"].sum()),
                               "kernels": list(orphans["name"])})
        kernels = _kernel_rows(device, owner, len(rows), lo)
        by_device = {str(pid): float(busy_shares(part["ts"].to_numpy(), part["end"].to_numpy(), lo, hi)[0].sum())
                     for pid, part in device.groupby("pid")}
    op_idle = idle_shares(ops["ts"].to_numpy(), ops["end"].to_numpy(), bounds, idle)
    rows["wall_us"] = rows["wall_us"].to_numpy() + op_idle
    total_idle = float((np.diff(bounds) * idle).sum())
    extra_rows.append({"name": IDLE_OP, "ts": hi, "end": hi, "host_us": 0.0, "device_us": 0.0,
                       "wall_us": max(total_idle - float(op_idle.sum()), 0.0), "kernels": []})
    rows = pd.concat([rows, pd.DataFrame(extra_rows)], ignore_index=True)
    rows["seq"] = np.arange(len(rows))
    return Attributed(rows, kernels, busy, by_device)
