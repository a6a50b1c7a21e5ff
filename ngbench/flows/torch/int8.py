"""int8 for the torch flow: LLM.int8() through bitsandbytes on CUDA, dynamic int8 on the CPU.

The ort flow quantizes its ONNX graph itself (onnxruntime.quantization); TorchConfig.check rejects the rest.
"""

from __future__ import annotations

from ngbench.errors import UserError, require


def quantize_for_torch(bundle, ctx) -> dict:
    """Replace the model's nn.Linear layers in place; returns facts for summary.json."""
    if ctx.is_cuda:
        return _llm_int8(bundle, ctx)
    return _cpu_dynamic_int8(bundle)


def _linear_children(model, skip: tuple[str, ...]):
    import torch

    for parent_name, parent in model.named_modules():
        for child_name, child in list(parent.named_children()):
            full = f"{parent_name}.{child_name}" if parent_name else child_name
            if isinstance(child, torch.nn.Linear) and not any(full.endswith(s) for s in skip):
                yield parent, child_name, child


def _llm_int8(bundle, ctx) -> dict:
    """LLM.int8(): every Linear but the output head becomes bnb.nn.Linear8bitLt (outlier threshold)."""
    bnb = require("bitsandbytes", "bitsandbytes", "+quant=int8 on CUDA (LLM.int8())")
    import torch

    threshold = ctx.quant.llm_int8_threshold
    skip = tuple(ctx.model_cfg.get("quant_skip", ()))   # ModelConfig.quant_skip; a model without a schema: none
    replaced = 0
    for parent, name, linear in list(_linear_children(bundle.model, skip)):
        layer = bnb.nn.Linear8bitLt(linear.in_features, linear.out_features, bias=linear.bias is not None,
                                    has_fp16_weights=False, threshold=threshold)
        layer.weight = bnb.nn.Int8Params(linear.weight.data.to("cpu", torch.float16), requires_grad=False,
                                         has_fp16_weights=False)
        if linear.bias is not None:
            layer.bias = torch.nn.Parameter(linear.bias.data.to(torch.float16), requires_grad=False)
        setattr(parent, name, layer.to(ctx.device))  # moving to CUDA quantizes the weights
        replaced += 1
    if replaced == 0:
        raise UserError(f"+quant=int8: model {ctx.model_name} has no nn.Linear layer to quantize")
    return {"method": "LLM.int8() (bitsandbytes Linear8bitLt)", "threshold": threshold, "linear_layers": replaced}


def _cpu_dynamic_int8(bundle) -> dict:
    """Dynamic int8 (weights int8, activations quantized per call) for nn.Linear on the CPU."""
    import torch

    before = sum(1 for _ in _linear_children(bundle.model, ()))
    quantize_dynamic = torch.ao.quantization.quantize_dynamic
    bundle.model = quantize_dynamic(bundle.model, {torch.nn.Linear}, dtype=torch.qint8)
    return {"method": "torch.ao dynamic int8 (qint8 weights, per-call activation quantization)",
            "linear_layers": before}
