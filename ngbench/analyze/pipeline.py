"""One trace -> ops.parquet + kernels.parquet + summary.json, through ngbench's own pipeline:
kineto.load_trace -> kineto.windows (every thread) -> op_context (phase, module) -> result.attribute_windows
(zero costs: no calibration) -> inductor kernel labels -> taxonomy.classify -> record.write_run.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np

from ngbench.errors import UserError
from ngbench.trace.event_table import no_cyclic_gc
from ngbench.trace.kineto import DEVICE_CATEGORIES, LAUNCH_CATEGORIES

FLOW = "trace"
PROFILED_VIEW_NOTE = ("a trace recorded elsewhere has no calibration of the profiler's own cost: wall_us is the "
                      "profiled timeline (wall_us == wall_profiled_us), profiler overhead included")
STEPS_SYNTAX = re.compile(r"^\d+(-\d+)?(,\d+(-\d+)?)*$")


def parse_steps(text: str | None) -> set[int] | None:
    """`--steps 2,4-6` -> {2, 4, 5, 6}; None for all steps."""
    if text is None or text == "all":
        return None
    if not STEPS_SYNTAX.match(text.replace(" ", "")):
        raise UserError(f"--steps {text!r} is not valid; give step numbers and ranges, e.g. 3 or 2,4-6 (or all)")
    steps: set[int] = set()
    for part in text.replace(" ", "").split(","):
        first, _, last = part.partition("-")
        steps.update(range(int(first), int(last or first) + 1))
    return steps


def check_usable(events, path: Path) -> None:
    """A trace must hold operators; a GPU trace (launches recorded) must hold device activity too."""
    from ngbench.analyze.facts import launches_of

    if not (events["cat"] == "cpu_op").any():
        raise UserError(f"{path}: no operator events (cpu_op); expected a trace recorded with torch.profiler's "
                        "CPU activity (activities=[ProfilerActivity.CPU, ...])")
    launches = launches_of(events)
    if len(launches) and not events["cat"].isin(DEVICE_CATEGORIES).any():
        raise UserError(f"{path}: {len(launches)} device launches ({launches['name'].iloc[0]}, ...) but no device "
                        "activity (kernel/gpu_memcpy/gpu_memset events); expected a trace recorded with "
                        "ProfilerActivity.CUDA whose GPU tracer (CUPTI or roctracer) was working")


def select_steps(events, wanted: set[int] | None, path: Path) -> tuple[list, dict]:
    """The iteration ranges to attribute, (iteration, lo, hi, tid), and what was found."""
    from ngbench.trace.kineto import iteration_windows

    marks = iteration_windows(events)
    if not marks:
        if wanted is not None:
            raise UserError(f"{path}: --steps needs ProfilerStep#k ranges and the trace has none; "
                            "drop --steps to use the whole trace as one window")
        lo, hi = float(events["ts"].min()), float(events["end"].max())
        return [(0, lo, hi, None)], {"found": [], "used": [0], "window": "the whole trace (no ProfilerStep#k)"}
    found = [k for k, *_ in marks]
    if wanted is not None:
        missing = sorted(wanted - set(found))
        if missing:
            raise UserError(f"{path}: --steps {missing} not in the trace; it holds ProfilerStep#{found}")
        marks = [m for m in marks if m[0] in wanted]
    if len(set(found)) < len(found):  # the same step number on several threads: number them by position
        marks = [(i, lo, hi, tid) for i, (_, lo, hi, tid) in enumerate(marks)]
    facts = {"found": found, "used": [m[0] for m in marks], "window": "ProfilerStep#k"}
    if min(found) > 0:
        facts["not_in_trace"] = (f"ProfilerStep#0-{min(found) - 1}: the profiler schedule's wait and warm-up "
                                 "steps, which torch.profiler does not write")
    return marks, facts


def operator_events(events, graphs: list):
    """The operator table attribution takes top-level operators from: containers of the taxonomy and
    torch.compile's wrapper ranges dropped (their children are the operators), CUDA-graph replays split into
    the operators that captured them when the trace holds the capture (ngbench.trace.cuda_graphs), and each
    device launch that no operator encloses given an operator of its own, named after its kernel (a graph
    launch that could not be split: `[cuda graph replay]`)."""
    from ngbench.taxonomy import load_taxonomy
    from ngbench.trace.cuda_graphs import expand_graph_ops
    from ngbench.trace.inductor_code import drop_wrappers
    from ngbench.trace.kineto import drop_containers

    if graphs:
        events = expand_graph_ops(events, graphs)
    ops = drop_wrappers(drop_containers(events[events["cat"] == "cpu_op"], load_taxonomy().is_container))
    return _with_launch_ops(ops, events)


def _with_launch_ops(ops, events):
    import pandas as pd

    from ngbench.schema import GRAPH_REPLAY_OP
    from ngbench.trace.attribution import outermost
    from ngbench.trace.cuda_graphs import GRAPH_LAUNCH

    launches = events[events["cat"].isin(LAUNCH_CATEGORIES) & (events["correlation"] >= 0)]
    device = events[events["cat"].isin(DEVICE_CATEGORIES)]
    first_kernel = device.groupby("correlation")["name"].first()
    launches = launches[launches["correlation"].isin(first_kernel.index)]
    orphans = []
    op_threads = {tid: outermost(mine.sort_values(["ts", "end"], ascending=[True, False]))
                  for tid, mine in ops.groupby("tid")}
    for tid, mine in launches.groupby("tid"):
        top = op_threads.get(tid)
        if top is None or top.empty:
            orphans.append(mine)
            continue
        j = np.searchsorted(top["ts"].to_numpy(), mine["ts"].to_numpy(), side="right") - 1
        inside = (j >= 0) & (mine["end"].to_numpy() <= top["end"].to_numpy()[np.clip(j, 0, None)])
        orphans.append(mine[~inside])
    orphans = pd.concat(orphans) if orphans else launches.iloc[0:0]
    if orphans.empty:
        return ops
    is_graph = orphans["name"].astype(str).str.match(GRAPH_LAUNCH).to_numpy()
    named = np.where(is_graph, GRAPH_REPLAY_OP, first_kernel.reindex(orphans["correlation"]).to_numpy())
    extra = orphans.assign(name=named, cat="cpu_op", correlation=-1)
    return pd.concat([ops, extra], ignore_index=True)


def enrich(ops, context):
    """A window's operators with phase, module scope and input shapes/dtypes/values."""
    from ngbench.trace.torch_profiler import input_dtypes, input_shapes, input_values

    ops = context.apply(ops)
    parsed: dict[tuple[str, int], list] = {}  # parsed values are shared objects (one per distinct value): once each

    def once(kind: str, parse, value) -> list:
        key = (kind, id(value))
        return parsed[key] if key in parsed else parsed.setdefault(key, parse(value))

    return ops.assign(input_shapes=[once("dims", input_shapes, d) for d in ops["input_dims"]],
                      input_dtypes=[once("types", input_dtypes, t) for t in ops["input_types"]],
                      input_values=[once("values", input_values, v) for v in ops["concrete_inputs"]])


def attribute(events, marks: list):
    """Windows of every thread, with operator context (found for all windows at once) and CUDA-graph replays
    split where the trace holds their capture, attributed with zero costs. Returns (windows, profile, graphs)."""
    import pandas as pd

    from ngbench.trace import kineto
    from ngbench.trace.cuda_graphs import captured_graphs, split_graph_window
    from ngbench.trace.op_context import OpContext
    from ngbench.trace.reconstruct import Costs
    from ngbench.trace.result import attribute_windows

    device_is_host = not events["cat"].isin(DEVICE_CATEGORIES).any()
    graphs = captured_graphs(events) if not device_is_host else []
    found = kineto.windows(events, operator_events(events, graphs), device_is_host=device_is_host, marks=marks,
                           all_threads=True, extra_columns=("seq_nr", "scope", "concrete_inputs"), with_records=False)
    found = [split_graph_window(w, graphs) for w in found]
    if not found:
        return found, attribute_windows(found, Costs({})), graphs
    every = pd.concat([w.ops.assign(window=k) for k, w in enumerate(found)], ignore_index=True)
    every = enrich(every, OpContext(events))
    parts = dict(tuple(every.groupby("window", sort=False)))
    found = [w.moved(index=mark[0], ops=parts[k].drop(columns="window").reset_index(drop=True) if k in parts
                     else w.ops.iloc[0:0]) for k, (w, mark) in enumerate(zip(found, marks))]
    return found, attribute_windows(found, Costs({})), graphs


@no_cyclic_gc()
def analyze_trace(path: str | Path, out_dir: str | Path, steps: set[int] | None = None, model: str | None = None,
                  batch_size: int = 0) -> dict:
    """Analyse one trace into `out_dir`; returns its summary. Raises UserError on a trace it cannot use."""
    from ngbench.analyze.summary import build_summary
    from ngbench.record import kernels_table, ops_table, owned_kernels, write_run
    from ngbench.schema import normalise_events
    from ngbench.taxonomy import classify
    from ngbench.trace.inductor_code import label_kernels
    from ngbench.trace.kineto import read_trace

    path = Path(path)
    timings = {}
    began = time.perf_counter()
    trace = read_trace(path)
    events = trace.events
    timings["read_s"] = time.perf_counter() - began
    check_usable(events, path)
    marks, step_facts = select_steps(events, steps, path)
    began = time.perf_counter()
    windows, profile, graphs = attribute(events, marks)
    rows = label_kernels(profile.ops, {}, set(), [], "")
    profile.ops = None   # `rows` holds them now (a 1 GB trace has about 400,000 op rows: one copy less)
    ops = classify(normalise_events(rows))
    timings["attribution_s"] = time.perf_counter() - began
    kernels = owned_kernels(profile.kernels, ops)
    summary = build_summary(path, trace, windows, profile, rows, ops, kernels, step_facts, timings, len(graphs),
                            model=model, batch_size=batch_size)
    key = summary.key
    write_run(out_dir, summary, ops_table(ops, key, summary.run_id),
              kernels_table(kernels, ops, key, summary.run_id))
    return summary.to_json()
