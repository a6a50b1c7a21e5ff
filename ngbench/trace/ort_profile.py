"""ONNX Runtime profile JSON -> the op-event table (pure functions; no onnxruntime import).

ORT's profiler (`SessionOptions.enable_profiling`) writes a Chrome-trace list. Each `Session`/`model_run`
event spans one `InferenceSession.run`; each `Node` event named `<node>_kernel_time` is one node
execution with `args.op_name`, `args.provider`, `args.input_type_shape` ([{dtype: shape}, ...]).
Timestamps are microseconds since the profiler started; `get_profiling_start_time_ns()` gives that
start on the system clock (CLOCK_REALTIME), the same clock Kineto writes as `baseTimeNanoseconds`.

CPU provider: node durations are the op's time (host_us = device_us = wall_us) and one `[idle]` row per
iteration holds model_run time outside every node, so Σ wall_us = model_run duration exactly.
CUDA provider: node durations are host time around asynchronous launches, so GPU kernels recorded by
CUPTI (torch.profiler) in the same process are matched to nodes by launch window and the three times
come from `ngbench.trace.attribution`, the rule every flow shares.
"""

from __future__ import annotations

import json
from pathlib import Path

KERNEL_SUFFIX = "_kernel_time"
CLOCK_TOLERANCE_US = 50.0   # an aligned model_run may stick out of its Kineto window by this much


def load_profile(path: str | Path) -> list[dict]:
    """Read an ORT profile file (a JSON list of Chrome-trace events)."""
    with open(path) as handle:
        data = json.load(handle)
    return data.get("traceEvents", []) if isinstance(data, dict) else data


def run_windows(events: list[dict]) -> list[tuple[float, float]]:
    """(start, end) of every `model_run` (one `InferenceSession.run`), in time order."""
    runs = [e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"]
    return sorted((float(e["ts"]), float(e["ts"]) + float(e["dur"])) for e in runs)


def format_shapes(type_shapes: list) -> tuple[list[list[int]], list[str]]:
    """ORT's [{dtype: shape}, ...] -> ([[1, 8, 32], [32]], ['float', 'float']): one entry per input."""
    shapes, dtypes = [], []
    for entry in type_shapes or []:
        for dtype, shape in entry.items():
            dtypes.append(str(dtype))
            shapes.append([int(d) for d in shape])
    return shapes, dtypes


def node_events(events: list[dict]):
    """One row per node execution: node, name (op type), provider, input_shapes, input_dtypes, ts, end, dur (µs)."""
    import pandas as pd

    rows = []
    for e in events:
        if e.get("cat") != "Node" or not e.get("name", "").endswith(KERNEL_SUFFIX):
            continue
        args = e.get("args") or {}
        shapes, dtypes = format_shapes(args.get("input_type_shape"))
        ts, dur = float(e["ts"]), float(e["dur"])
        rows.append((e["name"][: -len(KERNEL_SUFFIX)], args.get("op_name", ""), args.get("provider", ""),
                     shapes, dtypes, ts, ts + dur, dur))
    columns = ["node", "name", "provider", "input_shapes", "input_dtypes", "ts", "end", "dur"]
    return pd.DataFrame(rows, columns=columns).sort_values("ts", kind="stable").reset_index(drop=True)


def assign_iterations(nodes, windows: list[tuple[float, float]]):
    """Keep nodes inside one of `windows`, with `iteration` = that window's index."""
    import numpy as np
    import pandas as pd

    if not windows:
        return nodes.iloc[:0].assign(iteration=pd.Series(dtype=int))
    starts = np.array([w[0] for w in windows])
    ends = np.array([w[1] for w in windows])
    index = np.searchsorted(starts, nodes["ts"].to_numpy(), side="right") - 1
    inside = (index >= 0) & (nodes["end"].to_numpy() <= ends[np.clip(index, 0, None)])
    nodes = nodes[inside].copy()
    nodes["iteration"] = index[inside]
    return nodes.reset_index(drop=True)


def with_scopes(nodes, scopes: dict[str, list[str]]):
    """The node rows with module and module_type from the exported graph's scopes."""
    return nodes.assign(module=[scopes.get(n, ["", ""])[0] for n in nodes["node"]],
                        module_type=[scopes.get(n, ["", ""])[1] for n in nodes["node"]])


def _node_records(nodes):
    return nodes.assign(kind="node")[["name", "kind", "ts", "end"]]


def _empty(columns):
    import pandas as pd

    return pd.DataFrame(columns=columns)


OP_COLUMNS = ["name", "ts", "end", "node", "provider", "input_shapes", "input_dtypes", "module", "module_type"]


def cpu_windows(events: list[dict], scopes: dict[str, list[str]], runs: list[int]) -> list:
    """Attribution windows of a CPU-provider profile: one per `model_run` whose position is in `runs`.

    Node durations are the op's time (host = device = wall), and the window is the model_run, so Σ wall_us
    = model_run duration exactly (its time outside every node is the `[idle]` row).
    """
    from ngbench.trace.attribution import Window

    every = run_windows(events)
    chosen = [every[i] for i in runs]
    nodes = with_scopes(assign_iterations(node_events(events), chosen), scopes)
    found = []
    for i, (lo, hi) in enumerate(chosen):
        mine = nodes[nodes["iteration"] == i]
        found.append(Window(index=i, lo=lo, hi=hi, ops=mine[OP_COLUMNS].reset_index(drop=True),
                            launches=_empty(["name", "kind", "ts", "end", "correlation"]),
                            device=_empty(["name", "cat", "ts", "end", "dur", "stream", "pid", "correlation"]),
                            records=_node_records(mine), device_is_host=True))
    return found


# ----------------------------------------------------------------------------- CUDA: clock alignment
def align_offsets(ort_runs_us: list[tuple[float, float]], kineto_windows: list[tuple[float, float]],
                  base_offset_us: float, tolerance_us: float = CLOCK_TOLERANCE_US) -> tuple[list[float], float]:
    """Offsets that move each ORT run onto the Kineto timeline, and the worst misfit of the clock offset.

    Both profilers stamp the system clock, so `base_offset_us` = (ORT start ns - Kineto base ns) / 1000
    normally places every model_run inside its `ProfilerStep#k` range (which also holds the Python call and
    the final synchronise). Where it does not (a clock stepped, a profiler using another clock), that run is
    shifted so that its start meets the window's start instead.
    """
    offsets, worst = [], 0.0
    for (run_start, run_end), (lo, hi) in zip(ort_runs_us, kineto_windows, strict=True):
        start, end = run_start + base_offset_us, run_end + base_offset_us
        misfit = max(lo - start, end - hi, 0.0)
        worst = max(worst, misfit)
        offsets.append(base_offset_us if misfit <= tolerance_us else lo - run_start)
    return offsets, worst


def cuda_windows(events: list[dict], scopes: dict[str, list[str]], runs: list[int], kineto_tables: list,
                 ort_start_ns: float) -> tuple[list, float]:
    """Attribution windows of a CUDA-provider profile against the Kineto tables of the same runs.

    `runs` are the positions (among all model_runs) of the profiled runs, in order; `kineto_tables` the
    event tables (ngbench.trace.kineto.events_from_trace) of the torch.profiler sessions that wrapped them,
    each run in a `ProfilerStep#k`. ORT's nodes are the operators; the Kineto side gives launches, device
    activity and its records. Returns (windows, worst clock misfit in µs).
    """
    from ngbench.trace import kineto

    kineto_windows = [(w, table) for table in kineto_tables for w in kineto.windows(table)]
    every = run_windows(events)
    chosen = [every[i] for i in runs]
    nodes = with_scopes(node_events(events), scopes)
    found, worst = [], 0.0
    for i, ((window, table), (run_lo, run_hi)) in enumerate(zip(kineto_windows, chosen, strict=True)):
        base_offset = (ort_start_ns - table.attrs.get("base_time_ns", 0.0)) / 1000.0
        (offset,), misfit = align_offsets([(run_lo, run_hi)], [(window.lo, window.hi)], base_offset)
        worst = max(worst, misfit)
        mine = nodes[(nodes["ts"] >= run_lo) & (nodes["end"] <= run_hi)]
        mine = mine.assign(ts=mine["ts"] + offset, end=mine["end"] + offset)
        found.append(window.moved(index=i, ops=mine[OP_COLUMNS].reset_index(drop=True),
                                  records=_concat([window.records, _node_records(mine)])))
    return found, worst


def _concat(frames):
    import pandas as pd

    return pd.concat(frames, ignore_index=True)


def nodes_by_provider(ops) -> dict[str, int]:
    """Distinct nodes per execution provider (first profiled iteration)."""
    first = ops[(ops["iteration"] == ops["iteration"].min()) & (ops["provider"] != "")]
    return {str(k): int(v) for k, v in first.groupby("provider")["node"].nunique().items()}
