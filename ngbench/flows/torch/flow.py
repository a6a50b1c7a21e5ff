"""flow=torch: PyTorch eager inference, profiled with the PyTorch profiler (Kineto, CUPTI on GPU)."""

from __future__ import annotations

from ngbench.flows.base import Flow
from ngbench.flows.torch.config import TorchConfig


class TorchFlow(Flow):
    """Eager PyTorch under inference_mode; optional int8 through ngbench.flows.torch.int8."""

    cfg: TorchConfig

    def prepare(self, bundle) -> None:
        from ngbench.flows.torch.int8 import quantize_for_torch

        if self.ctx.quant:
            self._facts["quantization"] = quantize_for_torch(bundle, self.ctx)
        self.bundle = bundle

    def infer(self):
        import torch

        with torch.inference_mode():
            return self.bundle()

    def profiler(self):
        from ngbench.taxonomy import load_taxonomy
        from ngbench.trace.kineto import drop_containers
        from ngbench.trace.torch_profiler import KinetoProfiler

        taxonomy = load_taxonomy()
        return KinetoProfiler(self.infer, self.synchronize, self.ctx.device, warmup=self.ctx.profile_warmup,
                              model=self.bundle.model, keep_trace=self.ctx.trace_path,
                              ops_filter=lambda events: drop_containers(events, taxonomy.is_container))

