"""Read what Inductor generated: kernel names, the `Original ATen` provenance comments, GEMM templates, and
the wrapper ranges dynamo/AOT/Inductor open in a profile. Pure functions over names, code and event tables.

A kernel row's `fused_ops` are the aten operators Inductor fused into it, read from Inductor's own
provenance: the `Original ATen: [...]` comment it writes above each kernel definition in the generated
wrapper code, else the kernel's descriptive name (`descriptive_names="original_aten"`: the sorted,
de-duplicated overload-packet names of the kernel's origins joined by `_`), split with the vocabulary of
registered aten operators. Extern calls (`extern_kernels.mm` -> `aten::mm`, cuBLAS kernels) stay the
GEMM op they are, with no fused ops; templates (`triton_tem_fused_addmm_relu_0`) list the GEMM and its
epilogue. See docs/fusion.md.
"""

from __future__ import annotations

import re
from functools import lru_cache

from ngbench.schema import GRAPH_REPLAY_OP
from ngbench.taxonomy import load_taxonomy
from ngbench.trace.cuda_graphs import GRAPH_LAUNCH, CapturedGraph, expand_graph_ops
from ngbench.trace.kineto import DEVICE_CATEGORIES, LAUNCH_CATEGORIES

# Profiler ranges that dynamo/AOTAutograd/Inductor open around the compiled code: containers, not
# operators. Dropping them lets the kernels and extern calls inside become the top-level ops; their own
# host time (guards, wrapper Python) goes to the iteration's `[idle]` row like any framework overhead.
WRAPPER_EVENT = re.compile(
    r"^(TorchDynamo Cache Lookup|Torch-Compiled Region|Pregraph bytecode|AOTDispatcher |"
    r"## Call CompiledFxGraph|## .* ##$|CompiledFunction$|CUDAGraphs?Wrapper|run_cudagraph)")
REGION_EVENT = re.compile(r"^Torch-Compiled Region")
# cpp kernels are profiled as `graph_<id>_<kernel>` (cpp.enable_kernel_profile).
GRAPH_PREFIX = re.compile(r"^graph_\d+_")
KERNEL_NAME = re.compile(
    r"^(?:graph_\d+_)?(?P<backend>cpp|triton(?:_[a-z]{3})?|halide|mps|pallas)_fused_(?P<ops>\w+?)_(?P<index>\d+)$")
GENERATED_KERNEL = re.compile(r"^(?:graph_\d+_)?(cpp|triton|halide|mps|pallas)_\w+$")
ORIGINAL_ATEN = re.compile(r"Original ATen: \[(?P<ops>[^\]]*)\]")
KERNEL_DEFINITION = re.compile(r"^(?P<name>\w+) = async_compile\.\w+\(")
TEMPLATE_SOURCE = re.compile(r"@triton_heuristics\.template\(|micro_gemm", re.IGNORECASE)
GRAPH_WRAPPER = re.compile(r"^\s*def call\(", re.MULTILINE)


@lru_cache(maxsize=1)
def aten_op_names() -> frozenset[str]:
    """Overload-packet names of every registered aten operator (plus higher-order operators)."""
    import torch
    from torch._ops import _higher_order_ops

    names = {n.split("::", 1)[1].split(".", 1)[0] for n in torch._C._dispatch_get_all_op_names()
             if n.startswith("aten::")}
    return frozenset(names | set(_higher_order_ops))


def split_op_names(text: str, vocabulary: frozenset[str] | set[str]) -> list[str]:
    """Split `a_b_c` (sorted op names joined by `_`) into known op names, fewest pieces first.

    Inductor sorts and de-duplicates the names before joining them, so pieces must be strictly
    increasing; that resolves most ambiguities. A part that no known name covers is kept as it is.
    """
    best: dict[tuple[int, str], list[str] | None] = {}

    def solve(start: int, previous: str) -> list[str] | None:
        if start == len(text):
            return []
        key = (start, previous)
        if key not in best:
            options = []
            for end in [i for i, ch in enumerate(text) if ch == "_" and i > start] + [len(text)]:
                piece = text[start:end]
                if piece in vocabulary and piece > previous:
                    rest = solve(end + 1, piece) if end < len(text) else []
                    if rest is not None:
                        options.append([piece] + rest)
            best[key] = min(options, key=len) if options else None
        return best[key]

    return solve(0, "") or [text]


def parse_kernel_name(name: str, vocabulary: frozenset[str] | set[str] | None = None) -> list[str]:
    """`triton_per_fused__softmax_1` -> ['aten::_softmax']; [] for a name with no descriptive part."""
    match = KERNEL_NAME.match(name)
    if not match:
        return []
    ops = split_op_names(match["ops"], vocabulary if vocabulary is not None else aten_op_names())
    return [f"aten::{op}" for op in ops]


def kernel_origins_from_code(code: str) -> dict[str, list[str]]:
    """Kernel name -> aten ops, from the `Original ATen: [...]` comment Inductor writes above a kernel.

    Inductor writes the comment block (kernel path, source nodes, graph fragment) right above each
    Triton kernel's `name = async_compile.triton(...)`; cpp kernels get none (their names carry the ops).
    """
    origins: dict[str, list[str]] = {}
    pending: list[str] | None = None
    for line in code.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            found = ORIGINAL_ATEN.search(stripped)
            if found:
                pending = [op.strip().replace("aten.", "aten::", 1) for op in found["ops"].split(",") if op.strip()]
            continue
        definition = KERNEL_DEFINITION.match(line)
        if definition and pending:
            origins.setdefault(definition["name"], pending)
        if stripped:
            pending = None
    return origins


def kernel_sources(code: str) -> dict[str, str]:
    """Kernel name -> its source text, for every `name = async_compile.<x>(...)` definition in `code`."""
    sources: dict[str, str] = {}
    current: str | None = None
    lines: list[str] = []
    for line in code.splitlines():
        definition = KERNEL_DEFINITION.match(line)
        if definition:
            current, lines = definition["name"], []
        elif current is not None:
            if line.startswith("'''"):
                sources[current], current = "\n".join(lines), None
            else:
                lines.append(line)
    return sources


def gemm_templates(code: str) -> set[str]:
    """Generated kernels that compute a GEMM themselves (Triton/C++ GEMM templates, maybe with an epilogue)."""
    return {name for name, source in kernel_sources(code).items()
            if name.startswith("triton_tem_") or TEMPLATE_SOURCE.search(source)}


def kernel_op_name(name: str) -> str:
    """The kernel's name as Inductor's generated code spells it (without the cpp `graph_<id>_` prefix)."""
    return GRAPH_PREFIX.sub("", name) if GENERATED_KERNEL.match(name) else name


def fused_ops_of(name: str, origins: dict[str, list[str]], templates: set[str] = frozenset()) -> list[str]:
    """Source aten ops of a generated kernel (provenance comment first, then its name); [] otherwise.

    A pointwise/reduction kernel cannot compute a GEMM: a GEMM op among its origins is the part of an
    extern GEMM it took over (addmm's bias add, SDPA's mask, a conv's input layout copy), so it is left
    out when other ops remain. GEMM templates keep theirs.
    """
    if not GENERATED_KERNEL.match(name):
        return []
    kernel = kernel_op_name(name)
    ops = list(origins.get(kernel) or parse_kernel_name(kernel))
    if kernel in templates:
        return ops
    rest = [op for op in ops if not load_taxonomy().is_gemm_op(op)]
    return rest or ops


def drop_wrappers(events):
    """The Kineto event table without dynamo/AOT/Inductor container ranges (see WRAPPER_EVENT)."""
    wrapper = (events["cat"] == "cpu_op") & events["name"].str.match(WRAPPER_EVENT)
    return events[~wrapper]


def add_launch_ops(events):
    """Give each kernel launch that no kept operator encloses its own `cpu_op`, named after its kernel.

    Triton launches open a profiler range named after the kernel already; this covers launchers that
    don't (so a kernel is never lumped into `[unattributed kernels]` when its launch is known). A CUDA-graph
    launch left here (its replay could not be split, see ngbench.trace.cuda_graphs) is `[cuda graph replay]`,
    not its first kernel: its kernels are many operators' work.
    """
    import pandas as pd

    ops = events[events["cat"] == "cpu_op"]
    launches = events[events["cat"].isin(LAUNCH_CATEGORIES) & (events["correlation"] >= 0)]
    if launches.empty:
        return events
    kernel_of = (events[events["cat"].isin(DEVICE_CATEGORIES)].groupby("correlation")["name"].first())
    starts, ends = ops["ts"].to_numpy(), ops["end"].to_numpy()
    extra = []
    for row in launches.itertuples(index=False):
        inside = ((starts <= row.ts) & (ends >= row.end) & (ops["tid"].to_numpy() == row.tid)).any()
        if not inside and row.correlation in kernel_of.index:
            name = GRAPH_REPLAY_OP if GRAPH_LAUNCH.match(str(row.name)) else str(kernel_of[row.correlation])
            extra.append(row._replace(name=name, cat="cpu_op", correlation=-1))
    if not extra:
        return events
    return pd.concat([events, pd.DataFrame(extra, columns=events.columns)], ignore_index=True)


def compiled_events(events, graphs: list[CapturedGraph] = ()):
    """Kineto events as the inductor flow attributes them: containers dropped, CUDA-graph replays split into
    the operators that captured them (`graphs`), other launches given an op."""
    return add_launch_ops(expand_graph_ops(drop_wrappers(events), list(graphs)))


def label_kernels(ops, origins: dict[str, list[str]], templates: set[str], regions, region_module_type: str):
    """Name kernel rows as in the generated code, fill fused_ops, and put rows of compiled code in the
    compiled region's module (class `region_module_type`, path '')."""
    import numpy as np

    ops = ops.copy()
    names = ops["op"].tolist()
    distinct = set(names)   # once per distinct name: rows of one name share its fused_ops list
    fused = {name: fused_ops_of(name, origins, templates) for name in distinct}
    renamed = {name: kernel_op_name(name) for name in distinct}
    ops["fused_ops"] = [fused[name] for name in names]
    ops["op"] = [renamed[name] for name in names]
    inside = np.zeros(len(ops), dtype=bool)
    for start, end in regions:
        inside |= (ops["ts"].to_numpy() >= start) & (ops["end"].to_numpy() <= end) & (ops["host_us"].to_numpy() > 0)
    if "module_type" not in ops:
        ops["module"], ops["module_type"] = "", ""
    ops.loc[inside & (ops["module_type"].fillna("") == ""), "module_type"] = region_module_type
    ops["module"] = ops["module"].fillna("")
    return ops
