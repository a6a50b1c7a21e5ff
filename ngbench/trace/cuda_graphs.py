"""Kernels replayed from CUDA graphs, given back to the operators that captured them.

When a CUDA graph is replayed, CUPTI gives every kernel (and memset/memcpy node) of the replay the correlation
id of the one `cudaGraphLaunch` call, so correlation alone puts them all on a single row. What they belong
to is known at capture time: between `cudaStreamBeginCapture` and `cudaStreamEndCapture` each operator of
the graph makes its launch calls (recorded by CUPTI, but running nothing), in the order the graph's nodes are
created. PyTorch replays a freshly recorded graph once right after capture (cudagraph trees do), so one
profiled capture call holds both: the captured launches, each owned by its operator, and the kernels of
that first replay, whose names fill in what each launch ran.

`captured_graphs(events)` reads that from a Kineto trace of the capture call. `replay_groups(...)` matches
the kernels of a later replay to a captured graph, by name and order (exactly when the sequences agree,
else by aligning them), and splits the launch call's interval into one synthetic operator per run of
kernels from the same captured operator. `expand_graph_ops` (operator side) and `split_graph_window`
(attribution side) apply the same split, so the op rows and the kernel ownership agree; kernels that match
nothing stay on a `[cuda graph replay]` row and count against the run's coverage.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from ngbench.schema import GRAPH_REPLAY_OP
from ngbench.trace.kineto import DEVICE_CATEGORIES, LAUNCH_CATEGORIES

GRAPH_LAUNCH = re.compile(r"^(cu(da)?|hip)GraphLaunch")
BEGIN_CAPTURE = re.compile(r"^cu(da)?StreamBeginCapture")
END_CAPTURE = re.compile(r"^cu(da)?StreamEndCapture")
# calls that add a node to a graph under capture (kernel launches, memsets, memcpys)
NODE_CALL = re.compile(r"^(cudaLaunchKernel\w*|cuLaunchKernel\w*|cudaLaunchCooperativeKernel\w*|"
                       r"cuLaunchCooperativeKernel\w*|cudaMemsetAsync|cudaMemset\w*Async|cuMemsetD\w*Async|"
                       r"cudaMemcpy\w*Async|cuMemcpy\w*Async)(_v\d+)?$")
MIN_MATCHED_SHARE = 0.5      # a replay matched to a captured graph on fewer of its kernels stays unclaimed
SYNTHETIC_CORRELATION = -1000  # synthetic launches get ids below this (real ids are >= 0, -1 is "none")


@dataclass(frozen=True)
class Slot:
    """One node of a captured graph: the operator that launched it (its n-th operator, and its name as the
    profile spells it) and, when the first replay showed it, the kernel it ran."""

    op_index: int
    op: str
    kernel: str | None


@dataclass(frozen=True)
class CapturedGraph:
    slots: tuple[Slot, ...]


@dataclass(frozen=True)
class Group:
    """A run of consecutive replayed kernels from one captured operator: its synthetic operator's name and
    interval inside the graph launch call, and the kernels' positions in the replay (time order)."""

    op: str
    ts: float
    end: float
    positions: tuple[int, ...]


# ----------------------------------------------------------------------------- capture side
def captured_graphs(events) -> list[CapturedGraph]:
    """The graphs captured in a Kineto event table (ngbench.trace.kineto.events_from_trace), in capture order."""
    found = []
    calls = events[events["cat"].isin(LAUNCH_CATEGORIES)]
    ops = events[events["cat"] == "cpu_op"]
    for tid, on_thread in calls.groupby("tid"):
        names = on_thread["name"].astype(str)
        begins = on_thread[names.str.match(BEGIN_CAPTURE)].sort_values("ts")
        ends = on_thread[names.str.match(END_CAPTURE)].sort_values("ts")
        for opened, closed in zip(begins["end"], ends["ts"]):
            inside = on_thread[(on_thread["ts"] > opened) & (on_thread["end"] < closed)].sort_values("ts", kind="stable")
            nodes = _outermost(inside[inside["name"].astype(str).str.match(NODE_CALL)])
            thread_ops = ops[(ops["tid"] == tid) & (ops["ts"] >= opened) & (ops["end"] <= closed)]
            slots = _slots(nodes, thread_ops)
            kernels = _first_replay(events, on_thread, closed)
            if kernels is not None and len(kernels) == len(slots):
                slots = [Slot(s.op_index, s.op, k) for s, k in zip(slots, kernels)]
            found.append((float(opened), CapturedGraph(tuple(slots))))
    return [graph for _, graph in sorted(found, key=lambda item: item[0]) if graph.slots]


def _outermost(calls):
    """Calls not nested in an earlier one (a driver launch made inside a runtime launch is the same node)."""
    keep, current_end = [], float("-inf")
    for index, ts, end in zip(calls.index, calls["ts"], calls["end"]):
        if ts >= current_end:
            keep.append(index)
            current_end = end
    return calls.loc[keep]


def _slots(nodes, ops) -> list[Slot]:
    """Each captured node call with the outermost operator (inside the capture) that made it."""
    from ngbench.trace.inductor_code import GENERATED_KERNEL, drop_wrappers

    ops = drop_wrappers(ops).sort_values(["ts", "end"], ascending=[True, False])
    starts, ends, names = ops["ts"].to_numpy(), ops["end"].to_numpy(), ops["name"].astype(str).to_numpy()
    outer, current_end = [], float("-inf")
    for i in range(len(ops)):
        if starts[i] >= current_end:
            outer.append(i)
            current_end = ends[i]
    slots = []
    for ts in nodes["ts"].to_numpy():
        owner = next((i for i in reversed(outer) if starts[i] <= ts <= ends[i]), None)
        name = str(names[owner]) if owner is not None else ""
        slots.append(Slot(owner if owner is not None else -1 - len(slots), name,
                          name if GENERATED_KERNEL.match(name) else None))
    return slots


def _first_replay(events, calls, after: float) -> list[str] | None:
    """Names (in order) of the device activity of the first graph launch on the thread after `after`."""
    launches = calls[(calls["ts"] >= after) & calls["name"].astype(str).str.match(GRAPH_LAUNCH)]
    if launches.empty:
        return None
    correlation = launches.sort_values("ts").iloc[0]["correlation"]
    device = events[events["cat"].isin(DEVICE_CATEGORIES) & (events["correlation"] == correlation)]
    return device.sort_values("ts", kind="stable")["name"].astype(str).tolist()


# ----------------------------------------------------------------------------- replay side
def match_replay(kernels: list[str], graphs: list[CapturedGraph]) -> list[Slot | None]:
    """The captured slot of each replayed kernel (None where nothing matches), from the graph that matches
    best: a graph whose slots agree with the replay name by name (slots without a known kernel agree with
    anything) is taken whole; otherwise the names are aligned and only aligned kernels are matched."""
    best: list[Slot | None] = [None] * len(kernels)
    best_count = 0
    for graph in graphs:
        slots = graph.slots
        if len(slots) == len(kernels) and all(s.kernel in (None, k) for s, k in zip(slots, kernels)):
            return list(slots)
        matched = _aligned(kernels, slots)
        count = sum(m is not None for m in matched)
        if count > best_count:
            best, best_count = matched, count
    return best if kernels and best_count >= MIN_MATCHED_SHARE * len(kernels) else [None] * len(kernels)


def _aligned(kernels: list[str], slots: tuple[Slot, ...]) -> list[Slot | None]:
    tokens = [s.kernel if s.kernel is not None else f"\0{i}" for i, s in enumerate(slots)]
    matcher = difflib.SequenceMatcher(a=kernels, b=tokens, autojunk=False)
    matched: list[Slot | None] = [None] * len(kernels)
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            matched[block.a + k] = slots[block.b + k]
    return matched


def replay_groups(ts: float, end: float, kernels: list[str], graphs: list[CapturedGraph]) -> list[Group]:
    """Split a graph launch call [ts, end] into one synthetic operator per run of consecutive replayed kernels
    (`kernels`: their names in time order) from the same captured operator; unmatched runs are
    `[cuda graph replay]`. Pure: the operator side and the attribution side call it with the same inputs."""
    slots = match_replay(kernels, graphs)
    runs: list[tuple[str, object, list[int]]] = []
    for position, (slot, kernel) in enumerate(zip(slots, kernels)):
        key = ("slot", slot.op_index) if slot is not None else ("unmatched",)
        name = GRAPH_REPLAY_OP if slot is None else slot.op or kernel
        if runs and runs[-1][1] == key:
            runs[-1][2].append(position)
        else:
            runs.append((name, key, [position]))
    width = (end - ts) / max(len(runs), 1)
    return [Group(name, ts + i * width, ts + (i + 1) * width, tuple(positions))
            for i, (name, _, positions) in enumerate(runs)]


def _graph_launches(frame):
    names = frame["name"].astype(str)
    return frame[frame["cat"].isin(LAUNCH_CATEGORIES) & names.str.match(GRAPH_LAUNCH) & (frame["correlation"] >= 0)]


def expand_graph_ops(events, graphs: list[CapturedGraph]):
    """Operator side: each graph launch call becomes the synthetic operators of its replay groups (cpu_op
    rows on the launch's thread); the call itself leaves the table, so no other rule names an op after it."""
    import pandas as pd

    launches = _graph_launches(events)
    if launches.empty or not graphs:
        return events
    device = events[events["cat"].isin(DEVICE_CATEGORIES)]
    kernels_of = {c: rows.sort_values("ts", kind="stable")["name"].astype(str).tolist()
                  for c, rows in device[device["correlation"].isin(set(launches["correlation"]))].groupby("correlation")}
    extra = []
    for row in launches.itertuples(index=False):
        for group in replay_groups(row.ts, row.end, kernels_of.get(row.correlation, []), graphs):
            extra.append(row._replace(name=group.op, cat="cpu_op", ts=group.ts, end=group.end,
                                      dur=group.end - group.ts, correlation=-1))
    rest = events.drop(index=launches.index)
    return pd.concat([rest, pd.DataFrame(extra, columns=events.columns)], ignore_index=True)


def split_graph_window(window, graphs: list[CapturedGraph]):
    """Attribution side: each graph launch of the window is replaced by one synthetic launch per replay
    group (inside that group's operator), and the replayed activities take the group's correlation id."""
    import pandas as pd

    launches = _graph_launches(window.launches.assign(cat="cuda_runtime"))
    if launches.empty or not graphs:
        return window
    device = window.device.copy()
    extra, next_id = [], SYNTHETIC_CORRELATION
    for row in launches.itertuples():
        mine = device[device["correlation"] == row.correlation].sort_values("ts", kind="stable")
        for group in replay_groups(row.ts, row.end, mine["name"].astype(str).tolist(), graphs):
            middle = (group.ts + group.end) / 2
            # the launch's other columns (its thread, when the window has several) carry over
            extra.append({**{c: getattr(row, c) for c in window.launches.columns},
                          "ts": middle, "end": middle, "correlation": next_id})
            device.loc[mine.index[list(group.positions)], "correlation"] = next_id
            next_id -= 1
    kept = window.launches.drop(index=launches.index)
    return window.moved(launches=pd.concat([kept, pd.DataFrame(extra)], ignore_index=True), device=device)
