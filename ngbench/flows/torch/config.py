"""flow=torch's config: no knobs; the int8 rules of ngbench.flows.torch.int8."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ngbench.flows.config import FlowConfig

if TYPE_CHECKING:
    from ngbench.flows.base import RunContext


@dataclass
class TorchConfig(FlowConfig):
    _target_: str = "ngbench.flows.torch.flow.TorchFlow"

    def check(self, ctx: RunContext) -> str | None:
        if not ctx.quant:
            return None
        if ctx.is_cuda and ctx.precision == "fp32":
            return "LLM.int8() computes with fp16/bf16 activations; add precision=fp16"
        if not ctx.is_cuda and ctx.precision != "fp32":
            return "CPU dynamic int8 runs fp32 activations; use precision=fp32 (or platform=cuda for LLM.int8())"
        return None
