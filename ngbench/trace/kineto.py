"""Cut a PyTorch-profiler (Kineto) trace's event table (ngbench.trace.event_table) into iterations, and
those into attribution windows.

Iterations are `ProfilerStep#k` ranges (what `torch.profiler.profile(schedule=...)` + `prof.step()` write,
and what HTA, TensorBoard and Perfetto recognise) or, in traces of older ngbench versions,
`ngbench::iteration#k` ranges.
"""

from __future__ import annotations

import re

from ngbench.trace.event_table import (  # noqa: F401  (the event table's names, used by kineto's callers)
    COLUMNS,
    DEVICE_CATEGORIES,
    HOST_RECORD_CATEGORIES,
    LAUNCH_CATEGORIES,
    MODULE_EVENT_PREFIX,
    Trace,
    events_from_trace,
    load_trace,
    read_trace,
    trace_of,
)

STEP_PATTERN = re.compile(r"^(?:ProfilerStep|ngbench::iteration)#(\d+)$")
STEP_PREFIX = "ProfilerStep#"
MODULE_PREFIX = "ngbench::module "


def iteration_windows(events) -> list[tuple[int, float, float, str]]:
    """(iteration, start, end, tid) of each `ProfilerStep#k` (or `ngbench::iteration#k`) range, in time order."""
    annotations = events[events["cat"].isin(("user_annotation", "cpu_op"))]
    steps = annotations["name"].str.extract(STEP_PATTERN, expand=False)
    marks = annotations[steps.notna()].assign(step=steps.dropna().astype(int))
    return [(int(row.step), float(row.ts), float(row.end), row.tid)
            for row in marks.sort_values("ts").itertuples(index=False)]


def drop_containers(events, is_container):
    """The event table without the operator ranges that `is_container(name)` names and that enclose another
    operator on their thread (their children then become the top-level operators)."""
    import numpy as np

    ops = events[events["cat"] == "cpu_op"]
    candidates = ops[ops["name"].map(is_container)]
    if candidates.empty:
        return events
    dropped = []
    for tid, inner in ops.groupby("tid"):
        inner = inner.sort_values("ts")
        starts, ends, index = inner["ts"].to_numpy(), inner["end"].to_numpy(), inner.index.to_numpy()
        for row in candidates[candidates["tid"] == tid].itertuples():
            lo, hi = np.searchsorted(starts, row.ts, "left"), np.searchsorted(starts, row.end, "right")
            inside = (ends[lo:hi] <= row.end) & (index[lo:hi] != row.Index)
            if inside.any():
                dropped.append(row.Index)
    return events.drop(index=dropped)


RECORD_KINDS = {"cpu_op": "op", "user_annotation": "op", "cuda_runtime": "runtime", "cuda_driver": "driver",
                "hip_runtime": "runtime", "hip_driver": "driver"}
OP_PASSTHROUGH = ["name", "ts", "end", "input_dims", "input_types"]
LAUNCH_COLUMNS = ["name", "kind", "ts", "end", "correlation"]
DEVICE_COLUMNS = ["name", "cat", "ts", "end", "dur", "stream", "pid", "correlation"]


def by_time(events):
    """`events` sorted by start time (so a time range is a slice: see `between`)."""
    return events.sort_values("ts", kind="stable")


def between(sorted_events, lo: float, hi: float):
    """The rows of a `by_time` table that start inside [lo, hi]."""
    import numpy as np

    starts = sorted_events["ts"].to_numpy()
    return sorted_events.iloc[np.searchsorted(starts, lo, "left"):np.searchsorted(starts, hi, "right")]


def windows(events, ops_events=None, device_is_host: bool = False, first_index: int = 0, marks=None,
            all_threads: bool = False, extra_columns: tuple[str, ...] = (), with_records: bool = True) -> list:
    """One attribution `Window` per iteration range of a Kineto event table.

    `ops_events` is the table the operators are taken from when a flow reshapes it (drops wrapper ranges,
    adds launch ops); the host records the profiler paid for always come from `events` itself (only the
    reconstruction reads them: `with_records` False leaves them out, for zero costs). `marks`
    (iteration, lo, hi, tid) replace the `ProfilerStep#k` ranges. By default the operators are those of the
    iteration's own thread; with `all_threads` (a training step: forward on one thread, backward on
    another) the outermost operators of every thread, each launch matched to operators of its own thread
    (ops and launches then carry `tid`). `extra_columns` of the operator table pass through to the op rows.
    Each table is cut down to the columns a Window holds before it is sorted and sliced (a trace's event
    table can hold millions of rows).
    """
    from ngbench.trace.attribution import Window, window_ops

    ops_events = events if ops_events is None else ops_events
    marks = iteration_windows(events) if marks is None else marks
    passthrough = OP_PASSTHROUGH + (["tid"] if all_threads else []) + [c for c in extra_columns if c != "tid"]
    is_op = (ops_events["cat"] == "cpu_op") & ~ops_events["name"].str.match(STEP_PATTERN)
    cpu_ops = by_time(ops_events.loc[is_op, _present(ops_events, passthrough + ["tid"])])
    launches = by_time(events.loc[events["cat"].isin(LAUNCH_CATEGORIES), ["name", "cat", "ts", "end", "correlation", "tid"]])
    device = events.loc[events["cat"].isin(DEVICE_CATEGORIES) & (events["correlation"] >= 0), DEVICE_COLUMNS]
    device_rows = device.groupby("correlation").indices
    records = by_time(events.loc[events["cat"].isin(HOST_RECORD_CATEGORIES), ["name", "cat", "ts", "end", "tid"]]) \
        if with_records else None
    found = []
    for position, (_, lo, hi, tid) in enumerate(marks):
        candidates = between(cpu_ops, lo, hi)
        threads = sorted(set(candidates["tid"])) if all_threads else [tid]
        ops = by_time(_concat([window_ops(candidates, lo, hi, thread) for thread in threads], candidates))
        in_window = between(launches, lo, hi)
        # only launches of an operator's own thread can belong to it; device work launched by another
        # thread still counts as busy time, in the [unattributed kernels] row
        own = in_window if all_threads else in_window[in_window["tid"] == tid]
        positions = [device_rows[c] for c in in_window["correlation"] if c in device_rows]
        found.append(Window(
            index=first_index + position, lo=lo, hi=hi,
            ops=ops[[c for c in passthrough if c in ops.columns]].reset_index(drop=True),
            launches=_with_kind(own)[LAUNCH_COLUMNS + (["tid"] if all_threads else [])],
            device=device.iloc[_positions(positions)],
            records=_records(records, lo, hi, None if all_threads else tid) if with_records else None,
            device_is_host=device_is_host))
    return found


def _records(records, lo: float, hi: float, tid):
    """The host records inside [lo, hi] (of thread `tid`, unless None)."""
    on_threads = between(records, lo, hi)
    on_threads = on_threads[on_threads["end"] <= hi]
    if tid is not None:
        on_threads = on_threads[on_threads["tid"] == tid]
    return _with_kind(on_threads)[["name", "kind", "ts", "end"]]


def _present(table, columns: list[str]) -> list[str]:
    return list(dict.fromkeys(c for c in columns if c in table.columns))


def _concat(frames: list, like):
    import pandas as pd

    frames = [f for f in frames if len(f)]
    return pd.concat(frames) if frames else like.iloc[0:0]


def _positions(parts: list):
    import numpy as np

    return np.sort(np.concatenate(parts)) if parts else np.zeros(0, dtype=int)


def _with_kind(events):
    return events.assign(kind=events["cat"].map(RECORD_KINDS))
