"""Profile a callable with the PyTorch profiler (Kineto) and return the attributed op-event table.

Two passes keep the timed profile cheap:
1. the timed pass records operator events and device activity only (no shapes, no stacks, no module
   hooks) for `iters` iterations, each inside an `ngbench::iteration#k` range that ends with a device
   synchronise;
2. an annotation pass (one more iteration) records input shapes and the nn.Module scope of every op,
   through forward hooks that open `ngbench::module <path> [<Class>]` ranges.
The annotation is joined to the timed ops by position (op names are checked; a mismatch is aligned
with a sequence matcher and counted in the notes).
"""

from __future__ import annotations

import difflib
import os
import shutil
import tempfile
from collections.abc import Callable

from ngbench.attribution import attribute, window_ops
from ngbench.flows.base import ProfileResult
from ngbench.measure.timing import synchronizer
from ngbench.trace.kineto import ITERATION_PREFIX, MODULE_PREFIX, iteration_windows, load_trace


def _activities(device: str):
    from torch.profiler import ProfilerActivity

    return [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.startswith("cuda") else [])


def profiled_iterations(infer: Callable, iters: int, device: str, trace_path: str, record_shapes: bool,
                         first_index: int = 0, warmup: int = 1):
    """`warmup` unmarked inferences (in no iteration window) absorb the profiler's start-up costs, then
    `iters` marked ones; returns the Kineto event table."""
    import torch

    sync = synchronizer(device)
    sync()
    with torch.profiler.profile(activities=_activities(device), record_shapes=record_shapes,
                                with_stack=False, profile_memory=False, with_modules=False) as prof:
        for _ in range(warmup):
            infer()
            sync()
        for i in range(iters):
            with torch.profiler.record_function(f"{ITERATION_PREFIX}{first_index + i}"):
                infer()
                sync()
    prof.export_chrome_trace(trace_path)
    return load_trace(trace_path)


class ModuleScopes:
    """Forward hooks that open a profiler range per module call: `ngbench::module <path> [<Class>]`."""

    def __init__(self, model):
        self.model = model
        self.handles = []
        self.stack: list = []

    def __enter__(self):
        import torch

        for path, module in self.model.named_modules():
            label = f"{MODULE_PREFIX}{path or '<root>'} [{type(module).__name__}]"

            def pre(_module, _inputs, label=label):
                scope = torch.profiler.record_function(label)
                scope.__enter__()
                self.stack.append(scope)

            def post(_module, _inputs, _outputs):
                if self.stack:
                    self.stack.pop().__exit__(None, None, None)

            self.handles.append(module.register_forward_pre_hook(pre))
            self.handles.append(module.register_forward_hook(post, always_call=True))
        return self

    def __exit__(self, *exc_info):
        for handle in self.handles:
            handle.remove()
        while self.stack:
            self.stack.pop().__exit__(None, None, None)
        return False


def _parse_scope(name: str) -> tuple[str, str]:
    body = name[len(MODULE_PREFIX):]
    path, _, cls = body.rpartition(" [")
    return ("" if path == "<root>" else path), cls.rstrip("]")


def annotate(events):
    """Top-level ops of the first iteration with module path, module class, input shapes and dtypes."""
    import pandas as pd

    index, lo, hi, tid = iteration_windows(events)[0]
    on_thread = events[(events["tid"] == tid) & (events["ts"] >= lo) & (events["end"] <= hi)]
    ops = window_ops(events[events["cat"] == "cpu_op"], lo, hi, tid)
    scopes = on_thread[(on_thread["cat"] == "user_annotation") & on_thread["name"].str.startswith(MODULE_PREFIX)]
    marks = sorted([(t, 0, e, n) for t, e, n in zip(scopes["ts"], scopes["end"], scopes["name"])]
                   + [(t, 1, e, i) for i, (t, e) in enumerate(zip(ops["ts"], ops["end"]))])
    open_scopes: list[tuple[float, str]] = []
    module_of: dict[int, tuple[str, str]] = {}
    for ts, is_op, end, payload in marks:
        while open_scopes and open_scopes[-1][0] < ts:
            open_scopes.pop()
        if is_op:
            module_of[payload] = _parse_scope(open_scopes[-1][1]) if open_scopes else ("", "")
        else:
            open_scopes.append((end, payload))
    rows = []
    for i, (name, dims, types) in enumerate(zip(ops["name"], ops["input_dims"], ops["input_types"])):
        path, cls = module_of.get(i, ("", ""))
        shapes = "" if dims is None else str([d for d in dims if d != []] if isinstance(dims, list) else dims)
        dtype = "" if types is None else ",".join(sorted({t for t in types if t})) if isinstance(types, list) else str(types)
        rows.append({"op": name, "module": path, "module_type": cls, "input_shapes": shapes, "dtype": dtype})
    return pd.DataFrame(rows, columns=["op", "module", "module_type", "input_shapes", "dtype"])


def join_annotation(ops, annotation) -> tuple[object, int]:
    """Copy module/shape columns from the annotation pass onto each timed iteration, by position.

    Returns the joined table and the number of ops that could not be matched by name.
    """
    import pandas as pd

    columns = ["module", "module_type", "input_shapes", "dtype"]
    names = annotation["op"].tolist()
    frames, unmatched = [], 0
    for _, rows in ops.groupby("iteration", sort=True):
        rows = rows.copy()
        for column in columns:
            rows[column] = ""
        real = rows[~rows["op"].str.startswith("[")]
        if real["op"].tolist() == names:  # the common case: the same op sequence in both passes
            rows.loc[real.index, columns] = annotation[columns].to_numpy()
            frames.append(rows)
            continue
        matcher = difflib.SequenceMatcher(a=real["op"].tolist(), b=names, autojunk=False)
        positions = real.index.to_list()
        matched = 0
        for block in matcher.get_matching_blocks():
            for k in range(block.size):
                rows.loc[positions[block.a + k], columns] = annotation.loc[block.b + k, columns].to_list()
            matched += block.size
        unmatched += len(real) - matched
        frames.append(rows)
    return pd.concat(frames), unmatched


def profile_callable(infer: Callable, iters: int, device: str, model=None, keep_trace: str | None = None,
                     events_filter: Callable | None = None, post: Callable | None = None,
                     warmup: int = 1) -> ProfileResult:
    """Timed Kineto pass + annotation pass -> ProfileResult with host/device/wall times per op.

    `model` gets module-scope hooks in the annotation pass (None: shapes only). A flow can reshape the
    event table before attribution (`events_filter(events) -> events`, applied to both passes) and
    relabel the attributed ops (`post(ops, timed_events) -> ops`, while ts/end are still there).
    """
    keep = events_filter or (lambda events: events)
    with tempfile.TemporaryDirectory() as tmp:
        timed_path = os.path.join(tmp, "timed.json")
        events = profiled_iterations(infer, iters, device, timed_path, record_shapes=False, warmup=warmup)
        if keep_trace:
            shutil.copyfile(timed_path, f"{keep_trace}.tmp")
            os.replace(f"{keep_trace}.tmp", keep_trace)
        result = attribute(keep(events), device_is_host=not device.startswith("cuda"))
        notes = {}
        if result.busy_us_by_device:
            window = sum(result.iteration_us)
            notes["device_busy_share_by_device"] = {f"gpu{pid}": busy / window
                                                    for pid, busy in sorted(result.busy_us_by_device.items())}
        with ModuleScopes(model) if model is not None else _NullScope():
            annotation_events = profiled_iterations(infer, 1, device, os.path.join(tmp, "annot.json"),
                                                     record_shapes=True, warmup=0)
        ops, notes["annotation_unmatched_ops"] = join_annotation(result.ops, annotate(keep(annotation_events)))
    if post is not None:
        ops = post(ops, events)
    ops = ops.drop(columns=[c for c in ("ts", "end", "cat", "pid", "tid", "correlation", "external_id",
                                        "input_dims", "input_types", "dur") if c in ops.columns])
    return ProfileResult(ops=ops, iteration_us=result.iteration_us, busy_us=result.busy_us,
                         trace_path=keep_trace, notes=notes)


class _NullScope:
    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return False
