"""Rebuild a profiled iteration as it would have run without the profiler.

The profiler pays a host cost for every record it writes: each operator/record_function range, each CUDA
runtime or driver call that CUPTI records, each ONNX Runtime node event. `ngbench.measure.calibration`
measures that cost per record kind on this host with micro-loops run with and without the profiler. Here
the cost is taken off the host timeline and the device timeline is replayed against the faster host:

- host: half of a record's cost is paid at its start and half at its end, each right after the boundary's
  timestamp, so a host time t moves to t' = t - O(t), O(t) being the cost of every record boundary before
  t (a boundary never takes more than the gap to the next one, so the order of events is kept); the rest
  of the host time shrinks by the calibrated host slowdown (1 + s);
- device: per stream, in launch order, an activity starts at
  max(its profiled start moved as far as its launch moved (plus the launch's own entry cost, paid before
  the kernel was queued), the end of the previous activity on its stream, the rebuilt end of the activity
  on another stream it was seen waiting for) and keeps its duration;
- blocking calls (device/stream/event synchronise, and copies whose device activity ended inside the
  call) wait for the rebuilt device: a call that waited in the profiled run ends at
  max(its rebuilt start, the rebuilt end of what it waited for) + the same return latency, and the host
  timeline after it moves with it.

Nothing here looks at the clean latency: comparing the rebuilt iteration with it is the check
(`reconstructed_over_clean`).
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field

import numpy as np

from ngbench.trace.attribution import Window

SYNC_CALLS = frozenset({
    "cudaDeviceSynchronize", "cudaStreamSynchronize", "cudaEventSynchronize", "cuCtxSynchronize",
    "cuStreamSynchronize", "cuEventSynchronize", "hipDeviceSynchronize", "hipStreamSynchronize",
    "hipEventSynchronize"})
COPY_CALL_PREFIXES = ("cudaMemcpy", "cuMemcpy", "hipMemcpy")
WAIT_EPSILON_US = 1.0        # a call that ends within this of the device's end waited for it
DEPENDENCY_EPSILON_US = 2.0  # an activity starting this close after another stream's end waited for it


@dataclass(frozen=True)
class Costs:
    """The profiler's host cost: per record, by record kind (µs: op, runtime, driver, node), and a slowdown of
    all other host time (`host_slowdown`: 0.08 means the host's own work ran 8% slower while records were
    written around it; the profiler's data evicts the program's from the caches)."""

    per_kind_us: dict = field(default_factory=dict)
    host_slowdown: float = 0.0
    # block -> the host's speed probed before that profiled block over the speed probed at calibration
    # (calibration.scale_by_probe): a record costs that many times its calibrated price in that block
    block_scale: dict = field(default_factory=dict)

    def of(self, kind: str) -> float:
        return float(self.per_kind_us.get(kind, 0.0))

    def for_block(self, block: int) -> Costs:
        """The prices of one profiled block: the calibrated ones times the block's probe scale (1 without)."""
        scale = self.block_scale.get(block)
        if scale is None:
            return self
        return Costs({kind: float(us) * scale for kind, us in self.per_kind_us.items()}, self.host_slowdown)

    @property
    def is_free(self) -> bool:
        """No record costs anything: there is nothing to take off, and the rebuilt timeline is the profiled one
        (calibration off, or a trace recorded elsewhere)."""
        return not any(float(v) for v in self.per_kind_us.values()) and not self.host_slowdown


@dataclass
class Rebuilt:
    """A window rebuilt without the profiler's cost, and what the rebuild did."""

    window: Window
    removed_us: float        # profiled window length - rebuilt window length
    record_cost_us: float    # the calibrated cost of the window's records
    waits: int               # blocking calls that waited for the device


class HostClock:
    """t -> t' on the host. The cost of a record boundary is taken out of the gap that follows it, never more
    than that gap (so the rebuilt host timeline keeps its order); after a blocking call the clock re-anchors
    on the call's rebuilt end. `at(t)` maps one time (the replay's loop), calling the clock maps an array."""

    def __init__(self, records, costs: Costs, lo: float):
        cost = records["kind"].map(costs.per_kind_us).fillna(0.0).to_numpy(dtype=float) / 2.0
        times = np.concatenate([[lo], records["ts"].to_numpy(dtype=float), records["end"].to_numpy(dtype=float)])
        costs_at = np.concatenate([[0.0], cost, cost])
        order = np.argsort(times, kind="stable")
        self.times, self.costs = times[order], costs_at[order]
        self.speed = 1.0 + costs.host_slowdown
        kept_gaps = np.clip(np.diff(self.times) - self.costs[:-1], 0.0, None) / self.speed
        self.rebuilt = lo + np.concatenate([[0.0], np.cumsum(kept_gaps)])     # rebuilt time of each point
        self.total_cost = float(cost.sum() * 2)
        self.anchor_t: list[float] = [-np.inf]
        self.anchor_offset: list[float] = [0.0]
        # Python lists for the one-time-at-a-time path: bisect on a sorted list finds what searchsorted finds
        self._times, self._costs, self._rebuilt = self.times.tolist(), self.costs.tolist(), self.rebuilt.tolist()
        self._anchors_sorted = True

    def _unanchored(self, t):
        t = np.asarray(t, dtype=float)
        i = np.clip(np.searchsorted(self.times, t, side="right") - 1, 0, None)
        return self.rebuilt[i] + np.clip(t - self.times[i] - self.costs[i], 0.0, None) / self.speed

    def _unanchored_at(self, t: float) -> float:
        i = max(bisect_right(self._times, t) - 1, 0)
        return self._rebuilt[i] + max(t - self._times[i] - self._costs[i], 0.0) / self.speed

    def anchor(self, t: float, t_rebuilt: float) -> None:
        """From t on (t the end of a blocking call), times map relative to (t, t_rebuilt)."""
        self._anchors_sorted = self._anchors_sorted and t >= self.anchor_t[-1]
        self.anchor_t.append(t)
        self.anchor_offset.append(t_rebuilt - self._unanchored_at(t))

    def at(self, t: float) -> float:
        """The rebuilt time of one host time t (what calling the clock with [t] gives)."""
        if self._anchors_sorted:
            k = bisect_right(self.anchor_t, t) - 1
        else:  # calls nested in a blocking call that ended later: the array path's search, unchanged
            k = int(np.searchsorted(np.asarray(self.anchor_t), t, side="right")) - 1
        return self._unanchored_at(t) + self.anchor_offset[k]

    def __call__(self, t):
        t = np.asarray(t, dtype=float)
        k = np.searchsorted(np.asarray(self.anchor_t), t, side="right") - 1
        return self._unanchored(t) + np.asarray(self.anchor_offset)[k]


def _blocking(launches, device) -> np.ndarray:
    """Which host calls may block on the device: synchronise calls, and copies whose device activity ended
    before the call returned."""
    names = launches["name"].astype(str)
    is_sync = names.isin(SYNC_CALLS).to_numpy()
    copy_end = device.groupby("correlation")["end"].max()
    own_end = launches["correlation"].map(copy_end).to_numpy(dtype=float)
    is_copy = names.str.startswith(COPY_CALL_PREFIXES).to_numpy()
    copy_waited = is_copy & ~np.isnan(own_end) & (own_end <= launches["end"].to_numpy() + WAIT_EPSILON_US)
    return is_sync | copy_waited


class DeviceReplay:
    """Replays device activity, stream by stream, against the rebuilt host. `start` and `end` are lists (one
    activity at a time is scheduled); they hold the profiled times until an activity is scheduled."""

    def __init__(self, device):
        import pandas as pd

        self.device = device.reset_index(drop=True)
        start = self.device["ts"].to_numpy(dtype=float)
        end = self.device["end"].to_numpy(dtype=float)
        self.start, self.end = start.tolist(), end.tolist()
        self.dur = self.device["dur"].to_numpy(dtype=float).tolist()
        streams = self.device["stream"].astype(str) + "@" + self.device["pid"].astype(str)
        self.streams = pd.factorize(streams)[0]
        self._stream = self.streams.tolist()
        self.stream_end: dict[int, float] = {}
        self.done = [False] * len(self.device)
        self._waits_on = cross_stream_waits(start, end, self.streams).tolist()

    def schedule(self, i: int, earliest: float) -> None:
        stream = self._stream[i]
        start = max(earliest, self.stream_end.get(stream, -np.inf))
        dependency = self._waits_on[i]
        if dependency >= 0 and self.done[dependency]:
            start = max(start, self.end[dependency])
        self.start[i], self.end[i] = start, start + self.dur[i]
        self.stream_end[stream] = self.end[i]
        self.done[i] = True

    def finished_by(self) -> float:
        """The rebuilt end of everything scheduled so far."""
        return max(self.stream_end.values(), default=-np.inf)


def cross_stream_waits(start: np.ndarray, end: np.ndarray, streams: np.ndarray) -> np.ndarray:
    """For each activity, the activity on another stream whose end it started right after (an event wait), or
    -1. Activities are taken in start order; one that starts right after the previous activity of its own
    stream (in that order) was gated by its queue, not by another stream."""
    count = len(start)
    waits = np.full(count, -1, dtype=np.int64)
    if not count:
        return waits
    by_start = np.argsort(start, kind="stable")
    stream_of = streams[by_start]
    grouped = np.argsort(stream_of, kind="stable")   # positions in start order, stream by stream
    previous = np.full(count, -1, dtype=np.int64)
    same = stream_of[grouped[1:]] == stream_of[grouped[:-1]]
    previous[grouped[1:][same]] = grouped[:-1][same]
    previous_end = np.where(previous >= 0, end[by_start[np.clip(previous, 0, None)]], -np.inf)
    starts = start[by_start]
    free = ~(previous_end >= starts - DEPENDENCY_EPSILON_US)
    by_end = np.argsort(end, kind="stable")
    k = np.searchsorted(end[by_end], starts, side="right") - 1
    other = by_end[np.clip(k, 0, None)]
    found = free & (k >= 0) & (starts - end[other] <= DEPENDENCY_EPSILON_US) & (streams[other] != stream_of)
    waits[by_start[found]] = other[found]
    return waits


def rebuild(window: Window, costs: Costs) -> Rebuilt:
    """The window without the profiler's host cost (see the module docstring)."""
    clock = HostClock(window.records, costs, window.lo)
    if window.device_is_host:
        return _moved(window, clock, None, waits=0)
    launches = window.launches.sort_values("ts", kind="stable").reset_index(drop=True)
    replay = DeviceReplay(window.device)
    device = replay.device
    by_correlation = {corr: rows.tolist() for corr, rows in device.groupby("correlation").indices.items()}
    entry_cost = (launches["kind"].map(costs.per_kind_us).fillna(0.0).to_numpy(dtype=float) / 2.0).tolist()
    blocking = _blocking(launches, device).tolist()
    call_ts, call_end = launches["ts"].to_numpy(dtype=float), launches["end"].to_numpy(dtype=float)
    correlation = launches["correlation"].tolist()
    done_before = ProfiledDone(device)
    foreign = np.flatnonzero(~device["correlation"].isin(set(correlation)).to_numpy())
    times = np.concatenate([call_ts, device["ts"].to_numpy(dtype=float)[foreign]])
    is_foreign = np.concatenate([np.zeros(len(launches), dtype=int), np.ones(len(foreign), dtype=int)])
    index = np.concatenate([np.arange(len(launches)), foreign])
    order = np.lexsort((index, is_foreign, times))   # launches and foreign activity in time order
    call_ts, call_end = call_ts.tolist(), call_end.tolist()
    waits = 0
    for ts, other, i in zip(times[order].tolist(), is_foreign[order].tolist(), index[order].tolist()):
        if other:
            replay.schedule(i, clock.at(ts))
            continue
        issued = clock.at(call_ts[i])
        moved = call_ts[i] - issued + entry_cost[i]
        for k in by_correlation.get(correlation[i], ()):
            replay.schedule(k, replay.start[k] - moved)
        if not blocking[i]:
            continue
        profiled_done = done_before(call_end[i])
        if profiled_done is None or profiled_done <= call_ts[i] + WAIT_EPSILON_US:
            continue
        waited_for = replay.finished_by()
        tail = max(call_end[i] - profiled_done, 0.0)
        clock.anchor(call_end[i], max(waited_for, issued) + tail)
        waits += 1
    return _moved(window, clock, replay, waits)


class ProfiledDone:
    """When the device work a blocking call waited for finished in the profiled run: the latest end of the
    activities that started before the call returned and ended by then (within WAIT_EPSILON_US)."""

    def __init__(self, device):
        by_end = np.argsort(device["end"].to_numpy(dtype=float), kind="stable")
        self.ends = device["end"].to_numpy(dtype=float)[by_end].tolist()
        self.starts = device["ts"].to_numpy(dtype=float)[by_end].tolist()

    def __call__(self, call_end: float) -> float | None:
        j = bisect_right(self.ends, call_end + WAIT_EPSILON_US) - 1
        while j >= 0 and self.starts[j] > call_end:   # ended in the epsilon after the call, started after it
            j -= 1
        return self.ends[j] if j >= 0 else None


def _moved(window: Window, clock: HostClock, replay: DeviceReplay | None, waits: int) -> Rebuilt:
    ops = window.ops.assign(ts=clock(window.ops["ts"]), end=clock(window.ops["end"]))
    launches = window.launches.assign(ts=clock(window.launches["ts"]), end=clock(window.launches["end"]))
    records = window.records.assign(ts=clock(window.records["ts"]), end=clock(window.records["end"]))
    device = window.device
    hi = float(clock(window.hi))
    if replay is not None:
        device = replay.device.assign(ts=np.array(replay.start, dtype=float), end=np.array(replay.end, dtype=float))
        hi = max(hi, replay.finished_by())
    moved = window.moved(ops=ops, launches=launches, records=records, device=device, hi=hi)
    cost = clock.total_cost
    return Rebuilt(moved, (window.hi - window.lo) - (hi - window.lo), cost, waits)
