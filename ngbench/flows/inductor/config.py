"""flow=inductor's config: torch.compile's mode, fullgraph and dynamic."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ngbench.config import Choice
from ngbench.flows.config import FlowConfig

if TYPE_CHECKING:
    from ngbench.flows.base import RunContext

# torch.compile's modes have dashes, so the choice is made with Enum's functional API
InductorMode = Choice("InductorMode", {mode: mode for mode in
                                       ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")})


@dataclass
class InductorConfig(FlowConfig):
    _target_: str = "ngbench.flows.inductor.flow.InductorFlow"
    mode: InductorMode = InductorMode["default"]
    fullgraph: bool = False
    dynamic: bool = False

    def check(self, ctx: RunContext) -> str | None:
        if ctx.quant:
            return "flow=inductor compiles the float model; +quant runs on flow=torch or flow=ort"
        return None
