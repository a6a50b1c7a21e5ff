"""What the ONNX flows (ort, trt) share: the cached ONNX export, its facts, and the inputs by ONNX input name."""

from __future__ import annotations

from ngbench.flows.base import Flow
from ngbench.flows.onnx.export import ExportedModel, export_onnx, flat_inputs

__all__ = ["OnnxFlow", "ExportedModel", "export_onnx", "flat_inputs"]


class OnnxFlow(Flow):
    """A flow that runs the model's ONNX export in a runtime of its own (not torch's allocator or stream)."""

    clean_timer = "host"

    def export(self, bundle, opset: int, cache_dir: str) -> ExportedModel:
        """Export (or reuse the cached export), record its facts, keep the input tensors, and free the torch
        weights: the runtime holds its own copy, and peak memory should be the runtime's."""
        ctx = self.ctx
        exported = export_onnx(bundle, model_name=ctx.model_name, model_cfg=ctx.model_cfg,
                               precision=ctx.precision, opset=opset, cache_dir=cache_dir)
        self._facts.update(exporter=exported.exporter, export_s=round(exported.export_s, 3),
                           export_cache_hit=exported.cache_hit, onnx_path=exported.path, opset=exported.opset)
        tensors, _ = flat_inputs(bundle)
        self.inputs = dict(zip(exported.input_names, tensors, strict=True))
        self.exported = exported
        release_weights(bundle)
        return exported


def release_weights(bundle) -> None:
    """Move the torch model's parameters and buffers to the meta device (frees their memory)."""
    import torch

    bundle.model.to("meta")
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
