"""`FlowConfig`: what every flow's config has, and where its combination rules go. Each flow's own config
dataclass extends it beside its class (ngbench/flows/<name>/config.py); imports nothing heavy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from omegaconf import MISSING

if TYPE_CHECKING:
    from ngbench.flows.base import RunContext


@dataclass
class FlowConfig:
    """`_target_` is the Flow class, built as `Flow(ctx, cfg)`; `name` is the option's name (torch, ort...)."""

    _target_: str = MISSING
    name: str = MISSING

    def check(self, ctx: RunContext) -> str | None:
        """Why this flow cannot run this platform x precision x quant (None when it can). Called once,
        before anything is built."""
        return None
