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
come from `ngbench.attribution.attribute_iteration`, the rule every flow shares.
"""

from __future__ import annotations

import json
from pathlib import Path

from ngbench.schema import EVENT_COLUMNS, IDLE_OP

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


def format_shapes(type_shapes: list) -> tuple[str, str]:
    """ORT's [{dtype: shape}, ...] -> ('[[1, 8, 32], [32]]', first dtype)."""
    shapes, dtypes = [], []
    for entry in type_shapes or []:
        for dtype, shape in entry.items():
            dtypes.append(dtype)
            shapes.append(list(shape))
    return str(shapes), (dtypes[0] if dtypes else "")


def node_events(events: list[dict]):
    """One row per node execution: node, op, provider, input_shapes, dtype, ts, end, dur (µs)."""
    import pandas as pd

    rows = []
    for e in events:
        if e.get("cat") != "Node" or not e.get("name", "").endswith(KERNEL_SUFFIX):
            continue
        args = e.get("args") or {}
        shapes, dtype = format_shapes(args.get("input_type_shape"))
        ts, dur = float(e["ts"]), float(e["dur"])
        rows.append((e["name"][: -len(KERNEL_SUFFIX)], args.get("op_name", ""), args.get("provider", ""),
                     shapes, dtype, ts, ts + dur, dur))
    columns = ["node", "op", "provider", "input_shapes", "dtype", "ts", "end", "dur"]
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


def _add_scopes(rows, scopes: dict[str, list[str]]):
    rows["module"] = [scopes.get(n, ["", ""])[0] for n in rows["node"]]
    rows["module_type"] = [scopes.get(n, ["", ""])[1] for n in rows["node"]]
    return rows


def _finish(rows):
    """Order columns like EVENT_COLUMNS (+ node), number rows within each iteration."""
    from ngbench.schema import normalise_events

    rows = rows.sort_values(["iteration", "order"], kind="stable").reset_index(drop=True)
    rows["seq"] = rows.groupby("iteration").cumcount()
    rows["kernels"] = [k if isinstance(k, list) else [] for k in rows.get("kernels", [[]] * len(rows))]
    rows["fused_ops"] = [[] for _ in range(len(rows))]
    rows["node"] = rows["node"].fillna("")
    return normalise_events(rows[[c for c in EVENT_COLUMNS if c in rows] + ["node"]])


def cpu_op_table(events: list[dict], scopes: dict[str, list[str]], last: int | None = None):
    """Op-event table of a CPU-provider profile: (ops, iteration_us, busy_us) of the last `last` runs."""
    import pandas as pd

    windows = run_windows(events)[-last:] if last else run_windows(events)
    nodes = assign_iterations(node_events(events), windows)
    rows = nodes.assign(host_us=nodes["dur"], device_us=nodes["dur"], wall_us=nodes["dur"], order=nodes["ts"])
    idle = []
    iteration_us, busy_us = [], []
    for i, (start, end) in enumerate(windows):
        busy = float(rows.loc[rows["iteration"] == i, "dur"].sum())
        iteration_us.append(end - start)
        busy_us.append(busy)
        idle.append({"iteration": i, "node": "", "op": IDLE_OP, "order": end, "host_us": 0.0,
                     "device_us": 0.0, "wall_us": (end - start) - busy})
    rows = pd.concat([_add_scopes(rows, scopes), pd.DataFrame(idle)], ignore_index=True)
    return _finish(rows), iteration_us, busy_us


# ----------------------------------------------------------------------------- CUDA: clock alignment
def align_offsets(ort_runs_us: list[tuple[float, float]], kineto_windows: list[tuple[float, float]],
                  base_offset_us: float, tolerance_us: float = CLOCK_TOLERANCE_US) -> tuple[list[float], float]:
    """Offsets that move each ORT run onto the Kineto timeline, and the worst misfit of the clock offset.

    Both profilers stamp the system clock, so `base_offset_us` = (ORT start ns - Kineto base ns) / 1000
    normally places every model_run inside its `ngbench::iteration#k` range (which also holds the Python
    call and the final synchronise). Where it does not (a clock stepped, a profiler using another clock),
    that run is shifted so that its start meets the window's start instead.
    """
    offsets, worst = [], 0.0
    for (run_start, run_end), (lo, hi) in zip(ort_runs_us, kineto_windows, strict=True):
        start, end = run_start + base_offset_us, run_end + base_offset_us
        misfit = max(lo - start, end - hi, 0.0)
        worst = max(worst, misfit)
        offsets.append(base_offset_us if misfit <= tolerance_us else lo - run_start)
    return offsets, worst


def cuda_op_table(events: list[dict], scopes: dict[str, list[str]], kineto, kineto_base_ns: float,
                  ort_start_ns: float):
    """Op-event table of a CUDA-provider profile against the Kineto event table of the same runs.

    `kineto` is `ngbench.trace.kineto.events_from_trace(...)` of a torch.profiler trace that wrapped each
    run in `ngbench::iteration#k`. Returns (ops, iteration_us, busy_us, clock_misfit_us).
    """
    import pandas as pd

    from ngbench.attribution import attribute_iteration
    from ngbench.trace.kineto import DEVICE_CATEGORIES, LAUNCH_CATEGORIES, iteration_windows

    windows = [(lo, hi) for _, lo, hi, _ in iteration_windows(kineto)]
    runs = run_windows(events)[-len(windows):]
    offsets, misfit = align_offsets(runs, windows, (ort_start_ns - kineto_base_ns) / 1000.0)
    nodes = assign_iterations(node_events(events), runs)
    launches = kineto[kineto["cat"].isin(LAUNCH_CATEGORIES)]
    device = kineto[kineto["cat"].isin(DEVICE_CATEGORIES)].sort_values("ts")
    frames, iteration_us, busy_us = [], [], []
    for i, (lo, hi) in enumerate(windows):
        mine = nodes[nodes["iteration"] == i]
        ops = pd.DataFrame({"name": mine["op"], "ts": mine["ts"] + offsets[i], "end": mine["end"] + offsets[i],
                            "node": mine["node"], "provider": mine["provider"],
                            "input_shapes": mine["input_shapes"], "dtype": mine["dtype"]})
        in_launch = launches[(launches["ts"] >= lo) & (launches["ts"] <= hi)]
        kernels = device[device["correlation"].isin(set(in_launch["correlation"]))]
        rows, busy = attribute_iteration(ops, in_launch, kernels, lo, hi, device_is_host=False)
        frames.append(rows.assign(iteration=i, order=range(len(rows))))
        iteration_us.append(hi - lo)
        busy_us.append(busy)
    rows = pd.concat(frames, ignore_index=True).rename(columns={"name": "op"})
    rows["node"] = rows["node"].fillna("")
    return _finish(_add_scopes(rows, scopes)), iteration_us, busy_us, misfit


def nodes_by_provider(ops) -> dict[str, int]:
    """Distinct nodes per execution provider (first profiled iteration)."""
    first = ops[(ops["iteration"] == ops["iteration"].min()) & (ops["provider"] != "")]
    return {str(k): int(v) for k, v in first.groupby("provider")["node"].nunique().items()}
