"""flow=inductor: torch.compile with the Inductor backend."""

from ngbench.flows.inductor.flow import InductorFlow

__all__ = ["InductorFlow"]
