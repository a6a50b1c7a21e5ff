"""Profile a callable with the PyTorch profiler (Kineto; CUPTI on GPU) in blocks, and attribute it.

Two kinds of pass keep the timed profile cheap:
1. timed blocks record operator events and device activity only (no shapes, no stacks, no module hooks).
   Each block is one profiler session with a schedule: `warmup` steps that absorb the profiler's start-up
   costs, then `iters` active steps, each a `ProfilerStep#k` range ending with a device synchronise.
   Blocks are separate so the run can interleave them with clean timing (ngbench.measure.interleave);
2. one annotation pass (one more iteration) records input shapes and the nn.Module scope of every op,
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

from ngbench.trace import kineto
from ngbench.trace.attribution import window_ops
from ngbench.trace.event_table import no_cyclic_gc
from ngbench.trace.kineto import MODULE_PREFIX, iteration_windows, load_trace
from ngbench.trace.reconstruct import Costs
from ngbench.trace.result import ProfileResult, attribute_windows
from ngbench.trace.saved_trace import saved_trace_rows

ANNOTATION_COLUMNS = ["module", "module_type", "input_shapes", "input_dtypes", "input_values"]


def activities(device: str):
    from torch.profiler import ProfilerActivity

    return [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.startswith("cuda") else [])


def profiled_steps(infer: Callable, sync: Callable, iters: int, device: str, trace_path: str,
                   record_shapes: bool = False, warmup: int = 1):
    """`warmup` + `iters` inferences under one profiler session with a schedule; the active ones are
    `ProfilerStep#k` ranges. Writes the Chrome trace to `trace_path`."""
    import warnings

    from torch.profiler import profile, schedule

    sync()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*(won't be using warmup|clears events at the end)")
        plan = schedule(wait=0, warmup=warmup, active=iters, repeat=1)
        with profile(activities=activities(device), schedule=plan, record_shapes=record_shapes, with_stack=False,
                     profile_memory=False, with_modules=False,
                     on_trace_ready=lambda prof: prof.export_chrome_trace(trace_path)) as prof:
            for _ in range(warmup + iters):
                infer()
                sync()
                prof.step()


class ModuleScopes:
    """A profiler range per call of a module of `model`: `ngbench::module <path> [<Class>]`. The hooks are
    global (torch.nn.modules.module.register_module_forward_*hook), not on the modules: a module that checks
    its own hooks to choose a fused fast path (nn.TransformerEncoderLayer) then takes the same path as in the
    timed pass, so the annotation matches the timed ops."""

    def __init__(self, model):
        self.model = model
        self.handles = []
        self.stack: list = []

    def __enter__(self):
        import torch
        from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook

        if self.model is None:
            return self
        labels = {id(module): f"{MODULE_PREFIX}{path or '<root>'} [{type(module).__name__}]"
                  for path, module in self.model.named_modules()}

        def pre(module, _inputs):
            label = labels.get(id(module))
            if label is not None:
                scope = torch.profiler.record_function(label)
                scope.__enter__()
                self.stack.append((id(module), scope))

        def post(module, _inputs, _outputs):
            if self.stack and self.stack[-1][0] == id(module):
                self.stack.pop()[1].__exit__(None, None, None)

        self.handles = [register_module_forward_pre_hook(pre), register_module_forward_hook(post, always_call=True)]
        return self

    def __exit__(self, *exc_info):
        for handle in self.handles:
            handle.remove()
        while self.stack:
            self.stack.pop()[1].__exit__(None, None, None)
        return False


def _parse_scope(name: str) -> tuple[str, str]:
    body = name[len(MODULE_PREFIX):]
    path, _, cls = body.rpartition(" [")
    return ("" if path == "<root>" else path), cls.rstrip("]")


def input_shapes(dims) -> list[list[int]]:
    """Kineto's `Input Dims` as a list per input ([] for a scalar or a non-tensor input)."""
    if not isinstance(dims, list):
        return []
    return [[int(d) for d in dim] if isinstance(dim, list) and all(isinstance(d, int) for d in dim) else []
            for dim in dims]


def input_dtypes(types) -> list[str]:
    """Kineto's `Input type` as a list per input ('' for a non-tensor input)."""
    return [str(t) for t in types] if isinstance(types, list) else []


def input_values(values) -> list[str]:
    """Kineto's `Concrete Inputs` as text per input ('' for a tensor; a convolution's stride is '[2, 2]')."""
    return [str(v) for v in values] if isinstance(values, list) else []


def annotate(events):
    """Top-level ops of the first iteration with module path, module class, input shapes, dtypes and values."""
    import pandas as pd

    _, lo, hi, tid = iteration_windows(events)[0]
    on_thread = events[(events["tid"] == tid) & (events["ts"] >= lo) & (events["end"] <= hi)]
    is_step = events["name"].str.match(kineto.STEP_PATTERN)
    ops = window_ops(events[(events["cat"] == "cpu_op") & ~is_step], lo, hi, tid)
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
    values = ops["concrete_inputs"] if "concrete_inputs" in ops else [None] * len(ops)
    for i, (name, dims, types, concrete) in enumerate(zip(ops["name"], ops["input_dims"], ops["input_types"], values)):
        path, cls = module_of.get(i, ("", ""))
        rows.append({"op": name, "module": path, "module_type": cls, "input_shapes": input_shapes(dims),
                     "input_dtypes": input_dtypes(types), "input_values": input_values(concrete)})
    return pd.DataFrame(rows, columns=["op"] + ANNOTATION_COLUMNS)


def join_annotation(ops, annotation) -> tuple[object, int]:
    """Copy module/shape columns from the annotation pass onto each timed iteration, by position.

    Returns the joined table and the number of ops that could not be matched by name.
    """
    import pandas as pd

    names = annotation["op"].tolist()
    values = {column: annotation[column].tolist() for column in ANNOTATION_COLUMNS}
    frames, unmatched = [], 0
    for _, rows in ops.groupby("iteration", sort=True):
        rows = rows.copy()
        filled = {column: ["" if column.startswith("module") else [] for _ in range(len(rows))]
                  for column in ANNOTATION_COLUMNS}
        position = {index: k for k, index in enumerate(rows.index)}
        real = rows[~rows["op"].str.startswith("[")]
        timed = real["op"].tolist()
        if timed == names:   # the common case: the same op sequence in both passes
            blocks = [difflib.Match(0, 0, len(names))]
        else:
            blocks = difflib.SequenceMatcher(a=timed, b=names, autojunk=False).get_matching_blocks()
        matched = 0
        for block in blocks:
            for k in range(block.size):
                target = position[real.index[block.a + k]]
                for column in ANNOTATION_COLUMNS:
                    filled[column][target] = values[column][block.b + k]
            matched += block.size
        unmatched += len(real) - matched
        for column in ANNOTATION_COLUMNS:
            rows[column] = filled[column]
        frames.append(rows)
    return pd.concat(frames), unmatched


# A diagnostic (benchmarks/rebuild_costs.py): with save_trace=true and this set to 1 in the environment, every
# profiled block's raw Kineto trace is kept beside trace.json, as trace-block<k>.json, so that the rebuild can
# be re-run offline with other profiler-cost prices against the run's own clean blocks.
KEEP_BLOCK_TRACES = "NGBENCH_KEEP_BLOCK_TRACES"


def copy_whole(source: str, target: str) -> str:
    """`source` copied onto `target` as results are written (ngbench.output.atomic_write_bytes: whole, mode as
    the umask gives); returns `target`."""
    from ngbench.output import atomic_write_bytes

    atomic_write_bytes(target, lambda tmp: shutil.copyfile(source, tmp))
    return target


def keep_block_traces(traces: list[str], saved_trace: str) -> list[str]:
    """Copies of `traces` (one per block, in order) beside `saved_trace`, named trace-block<k>.json."""
    folder = os.path.dirname(saved_trace)
    return [copy_whole(path, os.path.join(folder, f"trace-block{block}.json")) for block, path in enumerate(traces)]


class KinetoProfiler:
    """Timed blocks + one annotation pass of `infer` under Kineto, attributed into a ProfileResult.

    A flow can reshape the event table operators are taken from (`ops_filter(events) -> events`, applied
    to both passes), rewrite each timed iteration's launches and device activity before attribution
    (`window_filter(window) -> window`: CUDA-graph replays, ngbench.trace.cuda_graphs) and relabel an
    iteration's joined op rows (`post(rows, events)`, while ts/end are there).
    """

    def __init__(self, infer: Callable, sync: Callable, device: str, warmup: int = 1, model=None,
                 keep_trace: str | None = None, ops_filter: Callable | None = None, post: Callable | None = None,
                 window_filter: Callable | None = None):
        self.infer, self.sync, self.device, self.warmup, self.model = infer, sync, device, warmup, model
        self.keep_trace, self.ops_filter, self.post = keep_trace, ops_filter or (lambda events: events), post
        self.window_filter = window_filter or (lambda window: window)
        self.workdir = tempfile.mkdtemp(prefix="ngbench-kineto-")
        self.traces: list[str] = []

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        shutil.rmtree(self.workdir, ignore_errors=True)
        return False

    def block(self, iters: int) -> None:
        """`warmup` unmarked + `iters` marked inferences under one profiler session."""
        path = os.path.join(self.workdir, f"block{len(self.traces)}.json")
        profiled_steps(self.infer, self.sync, iters, self.device, path, warmup=self.warmup)
        self.traces.append(path)

    @no_cyclic_gc()
    def result(self, costs: Costs) -> ProfileResult:
        """Attribute every block (raw and rebuilt), then join the annotation pass onto the op rows."""
        import pandas as pd

        all_windows, blocks, events_of = [], [], {}
        for block, path in enumerate(self.traces):
            events = load_trace(path)
            found = kineto.windows(events, self.ops_filter(events), device_is_host=not self.device.startswith("cuda"),
                                   first_index=len(all_windows))
            found = [self.window_filter(window) for window in found]
            all_windows += found
            blocks += [block] * len(found)
            events_of.update({w.index: events for w in found})
        if self.keep_trace and self.traces:
            copy_whole(self.traces[-1], self.keep_trace)
            if os.environ.get(KEEP_BLOCK_TRACES) == "1":
                keep_block_traces(self.traces, self.keep_trace)
        result = attribute_windows(all_windows, costs, blocks)
        saved = [w.index for w, b in zip(all_windows, blocks) if b == len(self.traces) - 1] if self.keep_trace else []
        annotation_path = os.path.join(self.workdir, "annotation.json")
        with ModuleScopes(self.model):
            profiled_steps(self.infer, self.sync, 1, self.device, annotation_path, record_shapes=True, warmup=0)
        annotation = annotate(self.ops_filter(load_trace(annotation_path)))
        result.ops, result.notes["annotation_unmatched_ops"] = join_annotation(result.ops, annotation)
        if self.post is not None:
            result.ops = pd.concat([self.post(rows, events_of[index]) for index, rows in result.ops.groupby("iteration")],
                                   ignore_index=True)
        if saved:  # where each op row of the saved trace's iterations is in that file (see saved_trace)
            origin = events_of[saved[0]].attrs.get("origin_us", 0.0)
            result.saved_trace_ops = saved_trace_rows(result.ops[result.ops["iteration"].isin(saved)], origin)
        result.ops = result.ops.drop(columns=[c for c in ("ts", "end", "input_dims", "input_types", "concrete_inputs")
                                              if c in result.ops.columns])
        return result
