"""The one small interface every deployment flow implements (see docs/architecture.md)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any


@dataclass
class RunContext:
    """What a flow needs to know about the run, resolved before anything is built."""

    device: str                 # "cpu" or "cuda:0"
    precision: str              # fp32 | fp16 | bf16
    batch_size: int
    quant: dict | None          # the +quant group, or None
    model_name: str
    run_dir: str
    seed: int = 0
    save_trace: bool = False
    profile_warmup: int = 3     # unmarked inferences under the profiler before the profiled ones
    model_cfg: dict = field(default_factory=dict)

    @property
    def is_cuda(self) -> bool:
        return self.device.startswith("cuda")


@dataclass
class ProfileResult:
    """The op-event table of the profiled pass plus per-iteration latency and device busy time."""

    ops: Any                    # pandas.DataFrame, columns ngbench.schema.EVENT_COLUMNS
    iteration_us: list[float]
    busy_us: list[float]
    trace_path: str | None = None
    notes: dict = field(default_factory=dict)


class Flow(ABC):
    """A deployment flow: prepare a model for inference, run it, profile it."""

    name = "flow"

    def __init__(self, name: str | None = None, **options: Any):
        self.options = options
        if name:
            self.name = name
        self._facts: dict = {}

    @classmethod
    def unsupported_reason(cls, ctx: RunContext, options: dict) -> str | None:
        """Why this flow cannot run this combination (None when it can). Called before building."""
        return None

    @abstractmethod
    def prepare(self, bundle, ctx: RunContext) -> None:
        """Export / compile / build the model for this flow; may raise UserError."""

    @abstractmethod
    def infer(self) -> Any:
        """One inference on the prepared inputs."""

    @abstractmethod
    def profile(self, iters: int, ctx: RunContext) -> ProfileResult:
        """Run `iters` inferences under the flow's profiler and return the op-event table."""

    def facts(self) -> dict:
        """Flow-specific facts for summary.json (compile/export time, provider placement...)."""
        return dict(self._facts)
