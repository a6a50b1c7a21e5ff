"""A thin wrapper that makes a transformers model return a fixed tuple of named outputs, so that the
flows (ONNX export in particular) see exactly `bundle.output_names` and no cache or hidden-state extras."""

from __future__ import annotations

from torch import nn


class SelectOutputs(nn.Module):
    """`model(*args, **kwargs)` -> tuple of the outputs named in `names` (in that order)."""

    def __init__(self, model: nn.Module, names: list[str]):
        super().__init__()
        self.model = model
        self.names = list(names)

    def forward(self, *args, **kwargs):
        out = self.model(*args, **kwargs)
        return tuple(out[name] for name in self.names)
