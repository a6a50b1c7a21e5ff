"""OnnxFlow: the base of the flows that run the model's ONNX export in a runtime of their own."""

from __future__ import annotations

from ngbench.flows.base import Flow
from ngbench.flows.onnx.config import OnnxConfig
from ngbench.flows.onnx.export import ExportedModel, export_onnx, flat_inputs


class OnnxFlow(Flow):
    """A flow that runs the model's ONNX export in a runtime of its own (not torch's allocator or stream)."""

    clean_timer = "host"
    cfg: OnnxConfig
    device_baseline: dict[str, int] | None = None   # device memory in use once the torch weights are freed

    def export(self, bundle) -> ExportedModel:
        """Export (or reuse the cached export), record its facts, keep the input tensors, and free the torch
        weights: the runtime holds its own copy, and peak memory should be the runtime's."""
        from ngbench.measure.memory import device_used_bytes

        ctx = self.ctx
        dynamic_batch = bool(getattr(self.cfg, "dynamic_batch", False))
        exported = export_onnx(bundle, model_name=ctx.model_name, model_cfg=ctx.model_cfg,
                               precision=ctx.precision, opset=self.cfg.opset, cache_dir=self.cfg.cache_dir,
                               dynamic_batch=dynamic_batch)
        self._facts.update(exporter=exported.exporter, export_s=round(exported.export_s, 3),
                           export_cache_hit=exported.cache_hit, onnx_path=exported.path, opset=exported.opset,
                           dynamic_batch=dynamic_batch)
        tensors, _ = flat_inputs(bundle)
        self.inputs = dict(zip(exported.input_names, tensors, strict=True))
        self.exported = exported
        release_weights(bundle)
        if ctx.is_cuda:
            self.device_baseline = device_used_bytes([ctx.device])
        return exported

    def memory_probe(self, devices: list[str]):
        """The runtime's device memory is not torch's: read the device's used memory (cudaMemGetInfo) above
        what was in use once the torch weights were freed (the CUDA context and the input tensors)."""
        from ngbench.measure.memory import memory_probe

        return memory_probe(devices, device_used_baseline=self.device_baseline or {})


def release_weights(bundle) -> None:
    """Free the torch model's weights: each parameter's and buffer's storage is shrunk to nothing, then the
    model moves to the meta device. Shrinking the storage frees it whoever still holds a tensor on it: on the
    H100, Llama-2-7B's 26.5 GB stayed allocated after `.to("meta")` alone (the exporter keeps aliases), and
    ONNX Runtime's CUDA session then ran out of memory building its own copy."""
    import gc
    import itertools

    import torch

    inputs = {tensor.untyped_storage().data_ptr() for tensor in flat_inputs(bundle)[0]}   # kept: they are fed
    for tensor in itertools.chain(bundle.model.parameters(), bundle.model.buffers()):
        storage = tensor.untyped_storage()
        if storage.data_ptr() in inputs:
            continue
        try:
            storage.resize_(0)
        except RuntimeError:            # a storage torch does not own (from numpy, say): .to("meta") below
            pass
    bundle.model.to("meta")
    gc.collect()                        # the exporter's reference cycles, so that empty_cache can free the blocks
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
