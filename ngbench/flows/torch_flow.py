"""flow=torch: PyTorch eager inference, profiled with the PyTorch profiler (Kineto, CUPTI on GPU)."""

from __future__ import annotations

from ngbench.flows.base import Flow, ProfileResult, RunContext


class TorchFlow(Flow):
    """Eager PyTorch under inference_mode; optional int8 through ngbench.quant."""

    name = "torch"

    @classmethod
    def unsupported_reason(cls, ctx: RunContext, options: dict) -> str | None:
        if not ctx.quant:
            return None
        if ctx.is_cuda and ctx.precision == "fp32":
            return "LLM.int8() computes with fp16/bf16 activations; add precision=fp16"
        if not ctx.is_cuda and ctx.precision != "fp32":
            return "CPU dynamic int8 runs fp32 activations; use precision=fp32 (or platform=cuda for LLM.int8())"
        return None

    def prepare(self, bundle, ctx: RunContext) -> None:
        from ngbench.quant import quantize_for_torch

        if ctx.quant:
            self._facts["quantization"] = quantize_for_torch(bundle, ctx)
        self.bundle = bundle

    def infer(self):
        import torch

        with torch.inference_mode():
            return self.bundle()

    def profile(self, iters: int, ctx: RunContext) -> ProfileResult:
        from ngbench.taxonomy import load_taxonomy
        from ngbench.trace.kineto import drop_containers
        from ngbench.trace.torch_profiler import profile_callable

        trace = f"{ctx.run_dir}/trace.json" if ctx.save_trace else None
        taxonomy = load_taxonomy()
        return profile_callable(self.infer, iters, ctx.device, model=self.bundle.model, keep_trace=trace,
                                events_filter=lambda events: drop_containers(events, taxonomy.is_container),
                                warmup=ctx.profile_warmup)
