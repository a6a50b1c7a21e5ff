"""The one small interface every deployment flow implements (see docs/architecture.md)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ngbench.config import QuantConfig
from ngbench.flows.config import FlowConfig
from ngbench.trace.reconstruct import Costs
from ngbench.trace.result import ProfileResult

if TYPE_CHECKING:
    from ngbench.measure.memory import MemoryProbe


@dataclass
class RunContext:
    """What a flow needs to know about the run, resolved before anything is built."""

    device: str                 # "cpu" or "cuda:0"
    precision: str              # fp32 | fp16 | bf16
    batch_size: int
    quant: QuantConfig | None   # the +quant group, or None
    model_name: str
    run_dir: str
    seed: int = 0
    save_trace: bool = False
    profile_warmup: int = 3     # unmarked inferences under the profiler before each profiled block
    model_cfg: dict = field(default_factory=dict)

    @property
    def is_cuda(self) -> bool:
        return self.device.startswith("cuda")

    @property
    def trace_path(self) -> str | None:
        """Where the Chrome trace of the profiled pass goes (save_trace=true), else None."""
        return f"{self.run_dir}/trace.json" if self.save_trace else None

    @property
    def device_index(self) -> int:
        return int(self.device.split(":")[1]) if ":" in self.device else 0


class BlockProfiler(Protocol):
    """A flow's profiler: blocks of profiled inferences (interleaved with clean timing by the run), then one
    attribution of them all. A context manager that frees its resources on exit."""

    def __enter__(self) -> BlockProfiler: ...

    def __exit__(self, *exc_info) -> bool: ...

    def block(self, iters: int) -> None:
        """`ctx.profile_warmup` unmarked, then `iters` marked inferences under the flow's profiler."""

    def result(self, costs: Costs) -> ProfileResult:
        """Every marked inference attributed on the raw and on the rebuilt timeline."""


class Flow(ABC):
    """A deployment flow: prepare a model for inference, run it, profile it. Built as `Flow(ctx, cfg)` with
    its typed config (a FlowConfig, whose `check(ctx)` has already accepted this combination)."""

    # how clean timing reads the latency: CUDA events on the current stream ("events"), or the host clock
    # around infer() + synchronize() ("host") for runtimes that run on streams of their own
    clean_timer = "events"
    # the host record kinds its profiler writes (what ngbench.measure.calibration must price)
    record_kinds: tuple[str, ...] = ("op", "runtime", "driver")

    def __init__(self, ctx: RunContext, cfg: FlowConfig):
        self.ctx = ctx
        self.cfg = cfg
        self.name = cfg.name
        self._facts: dict = {}
        self._warnings: list[str] = []

    @abstractmethod
    def prepare(self, bundle) -> None:
        """Export / compile / build the model for this flow; may raise UserError."""

    @abstractmethod
    def infer(self) -> Any:
        """One inference on the prepared inputs (asynchronous on a GPU: see synchronize)."""

    def synchronize(self) -> None:
        """Wait until the device work of the inferences so far is done."""
        if self.ctx.is_cuda:
            import torch

            torch.cuda.synchronize(self.ctx.device)

    @abstractmethod
    def profiler(self) -> BlockProfiler:
        """The flow's profiler (see BlockProfiler)."""

    def memory_probe(self, devices: list[str]) -> MemoryProbe:
        """Peak memory over a block of inferences on `devices`: torch's allocator on a GPU (torch owns the
        memory of this flow), the process's peak resident set on the CPU."""
        from ngbench.measure.memory import memory_probe

        return memory_probe(devices)

    def facts(self) -> dict:
        """Flow-specific facts for summary.json (compile/export time, execution providers...)."""
        return dict(self._facts)

    def warnings(self) -> list[str]:
        """What the flow saw that makes its result doubtful, one line each (summary.json's warnings)."""
        return list(self._warnings)
