"""Parse a PyTorch-profiler (Kineto) Chrome trace into one tidy event table, and cut it into iterations.

Columns: name, cat, ts, dur, end (microseconds), pid, tid, stream, correlation, external_id, input_dims,
input_types, concrete_inputs (with record_shapes: each non-tensor input's value as text, e.g. a convolution's
stride '[2, 2]'). Categories used downstream: cpu_op (operators), user_annotation (record_function ranges:
iterations and module scopes), cuda_runtime / cuda_driver (launches and other API calls), kernel /
gpu_memcpy / gpu_memset (device activity; `pid` is the device, `stream` its stream).

Iterations are `ProfilerStep#k` ranges (what `torch.profiler.profile(schedule=...)` + `prof.step()` write,
and what HTA, TensorBoard and Perfetto recognise) or, in traces of older ngbench versions,
`ngbench::iteration#k` ranges.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

DEVICE_CATEGORIES = ("kernel", "gpu_memcpy", "gpu_memset")
LAUNCH_CATEGORIES = ("cuda_runtime", "cuda_driver")
HOST_RECORD_CATEGORIES = ("cpu_op", "user_annotation", "cuda_runtime", "cuda_driver")
STEP_PATTERN = re.compile(r"^(?:ProfilerStep|ngbench::iteration)#(\d+)$")
STEP_PREFIX = "ProfilerStep#"
MODULE_PREFIX = "ngbench::module "

COLUMNS = ["name", "cat", "ts", "dur", "end", "pid", "tid", "stream", "correlation", "external_id",
           "input_dims", "input_types", "concrete_inputs"]


def _int_or(value, default: int = -1) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def event_row(event: dict) -> tuple:
    """One complete ('X') Chrome-trace event as a row of COLUMNS."""
    args = event.get("args") or {}
    ts = float(event.get("ts", 0.0))
    dur = float(event.get("dur", 0.0))
    cat = event.get("cat", "")
    stream = _int_or(args.get("stream"), _int_or(event.get("tid"))) if cat in DEVICE_CATEGORIES else -1
    return (event.get("name", ""), cat, ts, dur, ts + dur, str(event.get("pid", "")), str(event.get("tid", "")),
            stream, _int_or(args.get("correlation")), _int_or(args.get("External id")),
            args.get("Input Dims"), args.get("Input type"), args.get("Concrete Inputs"))


def events_from_trace(trace: dict | list):
    """Turn a Chrome trace (dict with traceEvents, or the list itself) into the event table."""
    import pandas as pd

    raw = trace.get("traceEvents", []) if isinstance(trace, dict) else trace
    rows = [event_row(event) for event in raw if event.get("ph") == "X"]
    table = pd.DataFrame(rows, columns=COLUMNS)
    base_ns = float(trace.get("baseTimeNanoseconds", 0)) if isinstance(trace, dict) else 0.0
    # times relative to the first event, so float64 keeps sub-nanosecond precision in differences
    origin = float(int(table["ts"].min())) if len(table) else 0.0
    table["ts"] -= origin
    table["end"] -= origin
    table.attrs["base_time_ns"] = base_ns + origin * 1000.0
    table.attrs["origin_us"] = origin
    return table


def load_trace(path: str | Path):
    """Read a Chrome trace JSON file into the event table."""
    with open(path) as handle:
        return events_from_trace(json.load(handle))


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


RECORD_KINDS = {"cpu_op": "op", "user_annotation": "op", "cuda_runtime": "runtime", "cuda_driver": "driver"}
OP_PASSTHROUGH = ["name", "ts", "end", "input_dims", "input_types"]


def windows(events, ops_events=None, device_is_host: bool = False, first_index: int = 0) -> list:
    """One attribution `Window` per iteration range of a Kineto event table.

    `ops_events` is the table the operators are taken from when a flow reshapes it (drops wrapper ranges,
    adds launch ops); the host records the profiler paid for always come from `events` itself.
    """
    from ngbench.trace.attribution import Window, window_ops

    ops_events = events if ops_events is None else ops_events
    is_step = ops_events["name"].str.match(STEP_PATTERN)
    cpu_ops = ops_events[(ops_events["cat"] == "cpu_op") & ~is_step]
    launches = events[events["cat"].isin(LAUNCH_CATEGORIES)]
    device = events[events["cat"].isin(DEVICE_CATEGORIES)]
    records = events[events["cat"].isin(HOST_RECORD_CATEGORIES)]
    found = []
    for position, (_, lo, hi, tid) in enumerate(iteration_windows(events)):
        ops = window_ops(cpu_ops, lo, hi, tid)
        in_window = launches[(launches["ts"] >= lo) & (launches["ts"] <= hi)]
        on_thread = records[(records["tid"] == tid) & (records["ts"] >= lo) & (records["end"] <= hi)]
        found.append(Window(
            index=first_index + position, lo=lo, hi=hi,
            ops=ops[[c for c in OP_PASSTHROUGH if c in ops.columns]].reset_index(drop=True),
            # only launches of the iteration's own thread can belong to its operators; device work launched
            # by another thread still counts as busy time, in the [unattributed kernels] row
            launches=_with_kind(in_window[in_window["tid"] == tid])[["name", "kind", "ts", "end", "correlation"]],
            device=device[device["correlation"].isin(set(in_window["correlation"]))],
            records=_with_kind(on_thread)[["name", "kind", "ts", "end"]],
            device_is_host=device_is_host))
    return found


def _with_kind(events):
    return events.assign(kind=events["cat"].map(RECORD_KINDS))
