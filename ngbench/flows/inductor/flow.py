"""flow=inductor: torch.compile with the Inductor backend; each generated kernel is one op row (its fused
aten ops read by ngbench.trace.inductor_code). See docs/fusion.md. Under CUDA graphs (mode=reduce-overhead,
max-autotune) the call that records the graphs is profiled, so that replayed kernels can be given back to the
operators that captured them (ngbench.trace.cuda_graphs, docs/kernels.md)."""

from __future__ import annotations

import time

from ngbench.errors import UserError, first_line
from ngbench.flows.base import Flow
from ngbench.flows.inductor.config import InductorConfig
from ngbench.trace.cuda_graphs import split_graph_window
from ngbench.trace.inductor_code import (
    GENERATED_KERNEL,
    GRAPH_WRAPPER,
    KERNEL_DEFINITION,
    REGION_EVENT,
    compiled_events,
    gemm_templates,
    kernel_origins_from_code,
    label_kernels,
)

GRAPH_MODES = ("reduce-overhead", "max-autotune")     # the modes that replay CUDA graphs on a GPU
RECORDING_CALLS = 2     # calls after compilation in which cudagraph trees may record (warm-up, then record)


class InductorFlow(Flow):
    """torch.compile(model, backend="inductor", mode=..., fullgraph=..., dynamic=...) under inference_mode."""

    cfg: InductorConfig

    def _inductor_config(self, device: str) -> dict:
        """Inductor settings the profile relies on (patched only around compilation)."""
        settings = {"triton.descriptive_names": "original_aten", "cpp.descriptive_names": "original_aten",
                    "triton.unique_kernel_names": True}
        if not device.startswith("cuda"):
            settings["cpp.enable_kernel_profile"] = True  # each cpp kernel becomes a profiler event
        return settings

    def prepare(self, bundle) -> None:
        import torch
        from torch._inductor.codecache import PyCodeCache

        ctx = self.ctx
        self.bundle = bundle
        opts = {"mode": str(self.cfg.mode), "fullgraph": self.cfg.fullgraph, "dynamic": self.cfg.dynamic}
        # Dynamo's caches live as long as the process: in a sweep, every cell's model goes through the same
        # wrapper's forward, and past recompile_limit (8) Dynamo runs it eager without an error. Each cell
        # compiles from a clean slate, as a run of its own would.
        torch._dynamo.reset()
        seen = len(PyCodeCache.modules)
        with torch._inductor.config.patch(self._inductor_config(ctx.device)):
            self.compiled = torch.compile(bundle.model, backend="inductor", **opts)
            try:
                begin = time.perf_counter()
                self.infer()
                self.synchronize()
                self._facts["compile_s"] = time.perf_counter() - begin
                begin = time.perf_counter()
                self.graphs = self._record_graphs(opts["mode"])  # reduce-overhead records its CUDA graphs now
                self._facts["second_call_s"] = time.perf_counter() - begin
            except Exception as exc:  # any compiler failure is the user's one line
                raise UserError(f"flow=inductor: torch.compile failed for {ctx.model_name}: {first_line(exc)}") from exc
        self._read_generated_code(PyCodeCache.modules[seen:])
        self._facts.update({"mode": opts["mode"], "fullgraph": opts["fullgraph"], "dynamic": opts["dynamic"],
                            "compiled_graphs": len(self.code), "generated_kernels": _count_kernels(self.code),
                            "kernels_with_provenance": len(self.origins),
                            "gemm_templates": len(self.templates),
                            "cuda_graphs_captured": len(self.graphs),
                            "cuda_graph_nodes": [len(g.slots) for g in self.graphs],
                            "cuda_graph_nodes_named": [sum(s.kernel is not None for s in g.slots) for g in self.graphs]})
        if not self.code:
            self._warnings.append(f"flow=inductor: torch.compile generated no code for {ctx.model_name}; "
                                  "the model ran eager (Dynamo skipped it; TORCH_LOGS=recompiles says why)")

    def _record_graphs(self, mode: str) -> list:
        """The call(s) after compilation, when cudagraph trees record: under a profiler when the mode replays
        CUDA graphs on a GPU, and the graphs captured in them (ngbench.trace.cuda_graphs.captured_graphs)."""
        if mode not in GRAPH_MODES or not self.ctx.device.startswith("cuda"):
            self.infer()
            self.synchronize()
            return []
        import os
        import tempfile

        from ngbench.trace.cuda_graphs import captured_graphs
        from ngbench.trace.kineto import load_trace
        from ngbench.trace.torch_profiler import profiled_steps

        with tempfile.TemporaryDirectory(prefix="ngbench-capture-") as workdir:
            for call in range(RECORDING_CALLS):
                path = os.path.join(workdir, f"capture{call}.json")
                profiled_steps(self.infer, self.synchronize, 1, self.ctx.device, path, warmup=0)
                graphs = captured_graphs(load_trace(path))
                if graphs:
                    return graphs
        return []

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

    def profiler(self):
        from ngbench.trace.torch_profiler import KinetoProfiler

        def label(rows, events):
            regions = events.loc[(events["cat"] == "cpu_op") & events["name"].str.match(REGION_EVENT), ["ts", "end"]]
            return label_kernels(rows, self.origins, self.templates, list(regions.itertuples(index=False, name=None)),
                                 type(self.bundle.model).__name__)

        graphs = self.graphs
        return KinetoProfiler(self.infer, self.synchronize, self.ctx.device, warmup=self.ctx.profile_warmup,
                              keep_trace=self.ctx.trace_path, ops_filter=lambda events: compiled_events(events, graphs),
                              post=label, window_filter=lambda window: split_graph_window(window, graphs))


def _read(module) -> str:
    try:
        with open(module.__file__) as handle:
            return handle.read()
    except (OSError, TypeError, AttributeError):
        return ""


def _count_kernels(codes: list[str]) -> int:
    return sum(1 for code in codes for line in code.splitlines()
               if (m := KERNEL_DEFINITION.match(line)) and GENERATED_KERNEL.match(m["name"]))
