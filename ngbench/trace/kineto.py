"""Parse a PyTorch-profiler (Kineto) Chrome trace into one tidy event table.

Columns: name, cat, ts, dur, end (microseconds), pid, tid, correlation, external_id, input_dims,
input_types. Categories used downstream: cpu_op (operators), user_annotation (record_function ranges:
iterations and module scopes), cuda_runtime / cuda_driver (launches), kernel / gpu_memcpy / gpu_memset
(device activity).
"""

from __future__ import annotations

import json
from pathlib import Path

DEVICE_CATEGORIES = ("kernel", "gpu_memcpy", "gpu_memset")
LAUNCH_CATEGORIES = ("cuda_runtime", "cuda_driver")
ITERATION_PREFIX = "ngbench::iteration#"
MODULE_PREFIX = "ngbench::module "

COLUMNS = ["name", "cat", "ts", "dur", "end", "pid", "tid", "correlation", "external_id",
           "input_dims", "input_types"]


def _int_or(value, default: int = -1) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def events_from_trace(trace: dict | list):
    """Turn a Chrome trace (dict with traceEvents, or the list itself) into the event table."""
    import pandas as pd

    raw = trace.get("traceEvents", []) if isinstance(trace, dict) else trace
    rows = []
    for event in raw:
        if event.get("ph") != "X":
            continue
        args = event.get("args") or {}
        ts = float(event.get("ts", 0.0))
        dur = float(event.get("dur", 0.0))
        rows.append((
            event.get("name", ""), event.get("cat", ""), ts, dur, ts + dur,
            str(event.get("pid", "")), str(event.get("tid", "")),
            _int_or(args.get("correlation")), _int_or(args.get("External id")),
            args.get("Input Dims"), args.get("Input type"),
        ))
    table = pd.DataFrame(rows, columns=COLUMNS)
    table.attrs["base_time_ns"] = float(trace.get("baseTimeNanoseconds", 0)) if isinstance(trace, dict) else 0.0
    return table


def load_trace(path: str | Path):
    """Read a Chrome trace JSON file into the event table."""
    with open(path) as handle:
        return events_from_trace(json.load(handle))


def iteration_windows(events) -> list[tuple[int, float, float, str]]:
    """(iteration, start, end, tid) of each `ngbench::iteration#k` range, in order."""
    marks = events[(events["cat"] == "user_annotation") & events["name"].str.startswith(ITERATION_PREFIX)]
    windows = []
    for _, row in marks.sort_values("ts").iterrows():
        index = int(row["name"][len(ITERATION_PREFIX):])
        windows.append((index, float(row["ts"]), float(row["end"]), row["tid"]))
    return windows


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
