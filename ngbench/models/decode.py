"""The decode phase: one new token per sequence against a KV cache of `seq_len` tokens.

The cache is made once at build time by a prefill (outside any timing). Each call then rebuilds a
DynamicCache whose layers point at those same prefill tensors (plain attribute assignment: no tensor
op, no copy) and runs one step; the step's torch.cat makes new tensors and leaves the prefill ones
untouched, so every call sees exactly `seq_len` cached tokens and does the work of a real
generate() step with the default DynamicCache. The cached keys/values are explicit inputs of the
wrapper, so an ONNX export sees them as graph inputs (past_key_i / past_value_i), not as constants."""

from __future__ import annotations

import inspect

import torch
from omegaconf import DictConfig
from torch import nn

from ngbench.models.base import ModelBundle
from ngbench.models.placement import prefixed


def restore_layer(layer, keys: torch.Tensor, values: torch.Tensor) -> None:
    """Point one cache layer at existing key/value tensors (what its lazy init + first update would do,
    without the copy)."""
    layer.keys, layer.values = keys, values
    layer.device, layer.dtype = keys.device, keys.dtype
    layer.is_initialized = True
    if hasattr(layer, "cumulative_length"):
        layer.cumulative_length = int(keys.shape[-2])


def cache_argument(model: nn.Module) -> str:
    """The forward() keyword of the KV cache: `cache` from transformers 5.2x, `past_key_values` before."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def returned_cache(out):
    """The cache a forward returned (`cache` or `past_key_values`, depending on the version)."""
    cache = getattr(out, "cache", None)
    return cache if cache is not None else out.past_key_values


class DecodeStep(nn.Module):
    """forward(input_ids [B, 1], attention_mask [B, S + 1], k_0, v_0, k_1, v_1, ...) -> (logits,)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.cache_argument = cache_argument(model)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, *past: torch.Tensor):
        from transformers import DynamicCache

        cache = DynamicCache(config=self.model.config)
        for layer, keys, values in zip(cache.layers, past[0::2], past[1::2], strict=True):
            restore_layer(layer, keys, values)
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, use_cache=True,
                         **{self.cache_argument: cache})
        return (out.logits,)


def prefill_cache(model: nn.Module, inputs: dict) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Run the prompt once; the per-layer (keys, values) tensors and the greedy next token [B, 1]."""
    from transformers import DynamicCache

    with torch.no_grad():
        out = model(**inputs, use_cache=True, **{cache_argument(model): DynamicCache(config=model.config)})
    past = []
    for layer in returned_cache(out).layers:
        past.extend([layer.keys, layer.values])
    next_token = out.logits[:, -1:, :].argmax(dim=-1)
    return past, next_token


def decode_bundle(cfg: DictConfig, model: nn.Module, inputs: dict, facts: dict, placement: dict) -> ModelBundle:
    """The ModelBundle of one decode step after a prefill of `inputs` (which must be seq_len long)."""
    from ngbench.errors import UserError

    if not (cfg.model.get("seq_len") or cfg.dataset.get("seq_len")):
        raise UserError(f"model '{cfg.model.name}': phase=decode needs model.seq_len (the KV cache length)")
    past, next_token = prefill_cache(model, inputs)
    mask = inputs["attention_mask"]
    next_token = next_token.to(mask.device)  # logits may sit on the last device of a spread model
    step_mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
    layers = len(past) // 2
    names = ["input_ids", "attention_mask"]
    names += [f"past_{kind}_{i}" for i in range(layers) for kind in ("key", "value")]
    facts = dict(facts, kv_cache_len=int(past[0].shape[-2]), input_shape=list(next_token.shape))
    return ModelBundle(model=DecodeStep(model).eval(), args=(next_token, step_mask, *past),
                       task=str(cfg.model.task), input_names=names, output_names=["logits"],
                       facts=facts, placement=prefixed(placement, "model"))
