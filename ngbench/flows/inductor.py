"""flow=inductor: torch.compile with the Inductor backend; each generated kernel is one op row.

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
import time
from functools import lru_cache

from ngbench.errors import UserError, first_line
from ngbench.flows.base import Flow, ProfileResult, RunContext

MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")

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
    from ngbench.taxonomy import load_taxonomy

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
    don't (so a kernel is never lumped into `[unattributed kernels]` when its launch is known).
    """
    import pandas as pd

    from ngbench.trace.kineto import DEVICE_CATEGORIES, LAUNCH_CATEGORIES

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
            extra.append(row._replace(name=str(kernel_of[row.correlation]), cat="cpu_op", correlation=-1))
    if not extra:
        return events
    return pd.concat([events, pd.DataFrame(extra, columns=events.columns)], ignore_index=True)


def compiled_events(events):
    """Kineto events as the inductor flow attributes them: containers dropped, launches given an op."""
    return add_launch_ops(drop_wrappers(events))


def label_kernels(ops, origins: dict[str, list[str]], templates: set[str], regions, region_module_type: str):
    """Name kernel rows as in the generated code, fill fused_ops, and put rows of compiled code in the
    compiled region's module (class `region_module_type`, path '')."""
    import numpy as np

    ops = ops.copy()
    ops["fused_ops"] = [fused_ops_of(name, origins, templates) for name in ops["op"]]
    ops["op"] = [kernel_op_name(name) for name in ops["op"]]
    inside = np.zeros(len(ops), dtype=bool)
    for start, end in regions:
        inside |= (ops["ts"].to_numpy() >= start) & (ops["end"].to_numpy() <= end) & (ops["host_us"].to_numpy() > 0)
    if "module_type" not in ops:
        ops["module"], ops["module_type"] = "", ""
    ops.loc[inside & (ops["module_type"].fillna("") == ""), "module_type"] = region_module_type
    ops["module"] = ops["module"].fillna("")
    return ops


class InductorFlow(Flow):
    """torch.compile(model, backend="inductor", mode=..., fullgraph=..., dynamic=...) under inference_mode."""

    name = "inductor"

    @classmethod
    def unsupported_reason(cls, ctx: RunContext, options: dict) -> str | None:
        mode = options.get("mode", "default")
        if mode not in MODES:
            return f"flow.mode={mode} is not an Inductor mode; valid: {', '.join(MODES)}"
        if ctx.quant:
            return "flow=inductor compiles the float model; +quant runs on flow=torch or flow=ort"
        return None

    def _inductor_config(self, device: str) -> dict:
        """Inductor settings the profile relies on (patched only around compilation)."""
        settings = {"triton.descriptive_names": "original_aten", "cpp.descriptive_names": "original_aten",
                    "triton.unique_kernel_names": True}
        if not device.startswith("cuda"):
            settings["cpp.enable_kernel_profile"] = True  # each cpp kernel becomes a profiler event
        return settings

    def prepare(self, bundle, ctx: RunContext) -> None:
        import torch
        from torch._inductor.codecache import PyCodeCache

        from ngbench.measure.timing import synchronizer

        self.bundle = bundle
        self.sync = synchronizer(ctx.device)
        opts = {"mode": self.options.get("mode", "default"), "fullgraph": bool(self.options.get("fullgraph", False)),
                "dynamic": bool(self.options.get("dynamic", False))}
        seen = len(PyCodeCache.modules)
        with torch._inductor.config.patch(self._inductor_config(ctx.device)):
            self.compiled = torch.compile(bundle.model, backend="inductor", **opts)
            try:
                begin = time.perf_counter()
                self.infer()
                self.sync()
                self._facts["compile_s"] = time.perf_counter() - begin
                begin = time.perf_counter()
                self.infer()  # reduce-overhead records its CUDA graphs on the next calls
                self.sync()
                self._facts["second_call_s"] = time.perf_counter() - begin
            except Exception as exc:  # any compiler failure is the user's one line
                raise UserError(f"flow=inductor: torch.compile failed for {ctx.model_name}: {first_line(exc)}") from exc
        self._read_generated_code(PyCodeCache.modules[seen:])
        self._facts.update({"mode": opts["mode"], "fullgraph": opts["fullgraph"], "dynamic": opts["dynamic"],
                            "compiled_graphs": len(self.code), "generated_kernels": _count_kernels(self.code),
                            "kernels_with_provenance": len(self.origins),
                            "gemm_templates": len(self.templates)})

    def _read_generated_code(self, modules) -> None:
        """Keep the graph wrappers Inductor generated (max-autotune also loads one module per benchmarked
        template choice) and read the kernels' origins and GEMM templates from them."""
        self.code = [code for code in map(_read, modules) if GRAPH_WRAPPER.search(code)]
        self.origins: dict[str, list[str]] = {}
        self.templates: set[str] = set()
        for code in self.code:
            for kernel, ops in kernel_origins_from_code(code).items():
                self.origins.setdefault(kernel, ops)
            self.templates |= gemm_templates(code)

    def infer(self):
        import torch

        with torch.inference_mode():
            return self.compiled(*self.bundle.args, **self.bundle.kwargs)

    def profile(self, iters: int, ctx: RunContext) -> ProfileResult:
        from ngbench.trace.torch_profiler import profile_callable

        def label(ops, events):
            regions = events.loc[(events["cat"] == "cpu_op") & events["name"].str.match(REGION_EVENT), ["ts", "end"]]
            return label_kernels(ops, self.origins, self.templates, list(regions.itertuples(index=False, name=None)),
                                 type(self.bundle.model).__name__)

        trace = f"{ctx.run_dir}/trace.json" if ctx.save_trace else None
        return profile_callable(self.infer, iters, ctx.device, keep_trace=trace, events_filter=compiled_events,
                                post=label, warmup=ctx.profile_warmup)


def _read(module) -> str:
    try:
        with open(module.__file__) as handle:
            return handle.read()
    except (OSError, TypeError, AttributeError):
        return ""


def _count_kernels(codes: list[str]) -> int:
    return sum(1 for code in codes for line in code.splitlines()
               if (m := KERNEL_DEFINITION.match(line)) and GENERATED_KERNEL.match(m["name"]))
