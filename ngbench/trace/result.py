"""ProfileResult: the one thing every flow's profile turns into, and the loop that builds it from windows.

Each profiled iteration (a `Window`) is attributed twice: on the raw profiled timeline (`wall_profiled_us`)
and on the timeline rebuilt without the profiler's cost (`wall_us`, `host_us`). Iterations that stalled
(far slower than the others, e.g. the host was preempted) are detected, counted and left out of the op
table, so shares and latencies come from the same iterations.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ngbench.trace.attribution import Window, attribute_window
from ngbench.trace.reconstruct import Costs, Rebuilt, rebuild

STALL_MAD = 6.0          # an iteration is stalled beyond median + this many (scaled) MADs ...
STALL_MIN_FRACTION = 0.15  # ... and beyond median x (1 + this)
ITERATION_COLUMNS = ["iteration", "block", "profiled_us", "rebuilt_us", "busy_us", "busy_profiled_us",
                     "record_cost_us", "waits", "stalled"]


@dataclass
class ProfileResult:
    """Op rows, kernel rows and per-iteration figures of a profiled pass.

    ops: one row per operator per kept iteration (EVENT_COLUMNS of ngbench.schema);
    kernels: one row per device activity per kept iteration (iteration, op_seq, kernel, ...);
    iterations: one row per profiled iteration, stalled ones included (ITERATION_COLUMNS);
    busy_us_by_device: busy time per GPU over the kept iterations (rebuilt timeline).
    """

    ops: object
    kernels: object
    iterations: object
    busy_us_by_device: dict = field(default_factory=dict)
    notes: dict = field(default_factory=dict)
    saved_trace_ops: object = None   # op rows of the saved trace.json's iterations: iteration, seq, ts_us, dur_us

    @property
    def kept(self):
        return self.iterations[~self.iterations["stalled"]]


def stalled(iteration_us) -> np.ndarray:
    """Which iterations stalled: slower than median + STALL_MAD scaled MADs and than median x (1 + STALL_MIN_FRACTION)."""
    values = np.asarray(iteration_us, dtype=float)
    if len(values) < 3:
        return np.zeros(len(values), dtype=bool)
    median = float(np.median(values))
    mad = 1.4826 * float(np.median(np.abs(values - median)))
    return values > median + max(STALL_MAD * mad, STALL_MIN_FRACTION * median)


def attribute_windows(windows: list[Window], costs: Costs, blocks: list[int] | None = None) -> ProfileResult:
    """Attribute every window on the raw and on the rebuilt timeline; drop stalled iterations.

    `blocks` gives each window's profiling block (for the interleaved clean/profiled comparison). The op
    rows keep the raw ts/end of their operators, for flows that relabel them afterwards.
    """
    import pandas as pd

    if not windows:
        raise RuntimeError("the profile holds no iteration ranges (ProfilerStep#k)")
    frames, kernel_frames, iteration_rows, by_device = [], [], [], {}
    for position, window in enumerate(windows):
        raw = attribute_window(window)
        priced = costs.for_block(blocks[position] if blocks else 0)
        if priced.is_free:  # nothing to take off: the rebuilt timeline is the profiled one
            rebuilt, clean = Rebuilt(window, 0.0, 0.0, 0), raw
        else:
            rebuilt = rebuild(window, priced)
            clean = attribute_window(rebuilt.window)
        rows = raw.rows.rename(columns={"wall_us": "wall_profiled_us", "name": "op"})
        rows["wall_us"] = clean.rows["wall_us"].to_numpy()
        rows["host_us"] = clean.rows["host_us"].to_numpy()
        if window.device_is_host:
            rows["device_us"] = rows["host_us"]
        rows["iteration"] = window.index
        frames.append(rows)
        kernel_frames.append(raw.kernels.assign(iteration=window.index))
        iteration_rows.append({
            "iteration": window.index, "block": blocks[position] if blocks else 0,
            "profiled_us": window.hi - window.lo, "rebuilt_us": rebuilt.window.hi - rebuilt.window.lo,
            "busy_us": clean.busy_us, "busy_profiled_us": raw.busy_us,
            "record_cost_us": rebuilt.record_cost_us, "waits": rebuilt.waits, "stalled": False})
        for device, busy in clean.busy_us_by_device.items():
            by_device.setdefault(window.index, {})[device] = busy
    iterations = pd.DataFrame(iteration_rows, columns=ITERATION_COLUMNS)
    iterations["stalled"] = stalled(iterations["profiled_us"])
    kept = set(iterations.loc[~iterations["stalled"], "iteration"])
    ops = pd.concat(frames, ignore_index=True)
    ops = ops[ops["iteration"].isin(kept)].reset_index(drop=True)
    kernels = pd.concat(kernel_frames, ignore_index=True)
    kernels = kernels[kernels["iteration"].isin(kept)].reset_index(drop=True)
    busy_by_device: dict[str, float] = {}
    for index, per_device in by_device.items():
        if index in kept:
            for device, busy in per_device.items():
                busy_by_device[device] = busy_by_device.get(device, 0.0) + busy
    return ProfileResult(ops, kernels, iterations, busy_by_device)
