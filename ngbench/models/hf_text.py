"""transformers text models (GPT-2, Llama, Mixtral, BERT): token ids from the dataset through the model's
tokenizer (when it is available offline; otherwise deterministic byte-piece ids), at `seq_len` tokens or
at the lines' own lengths. `phase: decode` runs one token against a KV cache of `seq_len` tokens."""

from __future__ import annotations

from collections.abc import Callable

import torch
from omegaconf import DictConfig

from ngbench.datasets import load_token_rows
from ngbench.errors import UserError
from ngbench.models.base import ModelBundle
from ngbench.models.hf_common import build_meta as hf_build_meta
from ngbench.models.hf_common import load_model
from ngbench.models.outputs import SelectOutputs
from ngbench.models.placement import prefixed

__all__ = ["build", "build_meta", "piece_ids", "tokenizer_for", "token_batch"]
build_meta = hf_build_meta
PIECE_BYTES = 4  # about the bytes per BPE token of English text, so lengths come out wikitext-like


def piece_ids(text: str, vocab_size: int) -> list[int]:
    """Deterministic stand-in for a tokenizer: each word cut into pieces of up to 4 UTF-8 bytes, each
    piece read as an integer folded into [1, vocab_size)."""
    ids = []
    for word in text.split():
        data = word.encode("utf-8")
        for start in range(0, len(data), PIECE_BYTES):
            ids.append(1 + int.from_bytes(data[start:start + PIECE_BYTES], "little") % (vocab_size - 1))
    return ids


def tokenizer_for(model_cfg: DictConfig, vocab_size: int) -> tuple[Callable[[str], list[int]], str]:
    """The checkpoint's tokenizer if it is on disk (model.path or the local hub cache; never a
    download), else `piece_ids`; with a description of which one was used."""
    source = model_cfg.get("path") or model_cfg.get("hub_id")
    if source and model_cfg.tokenizer:
        try:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(str(source), local_files_only=True)
            if not tokenizer("The game began .", add_special_tokens=False)["input_ids"]:
                tokenizer = None  # a checkpoint directory without vocabulary files tokenises to nothing
        except Exception:  # anything but a working tokenizer on disk means "use the stand-in"
            tokenizer = None
        if tokenizer is not None:
            def tokenize(text: str) -> list[int]:
                return [i % vocab_size for i in tokenizer(text, add_special_tokens=False)["input_ids"]]

            return tokenize, f"tokenizer {source}"
    return (lambda text: piece_ids(text, vocab_size)), "byte-piece ids (no tokenizer on disk)"


def max_positions(config) -> int | None:
    """The longest sequence the architecture accepts (None when unbounded)."""
    for key in ("max_position_embeddings", "n_positions"):
        if getattr(config, key, None):
            return int(getattr(config, key))
    return None


def token_batch(cfg: DictConfig, config, device: str, seq_len: int | None) -> tuple[dict, str]:
    """input_ids and attention_mask [batch, length] (right-padded when lengths differ) on `device`."""
    tokenize, how = tokenizer_for(cfg.model, int(config.vocab_size))
    rows = load_token_rows(cfg.dataset, cfg.batch_size, seq_len, cfg.seed, tokenize)
    limit = max_positions(config)
    rows = [row[:limit] if limit else row for row in rows]
    length = max(len(row) for row in rows)
    pad = int(getattr(config, "pad_token_id", None) or 0)
    input_ids = torch.full((len(rows), length), pad, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), length), dtype=torch.long)
    for i, row in enumerate(rows):
        input_ids[i, :len(row)] = torch.tensor(row, dtype=torch.long)
        attention_mask[i, :len(row)] = 1
    return {"input_ids": input_ids.to(device), "attention_mask": attention_mask.to(device)}, how


def wanted_seq_len(cfg: DictConfig, config) -> int | None:
    """model.seq_len, else dataset.seq_len, else None (lines at their own lengths); checked against the
    architecture's position limit."""
    seq_len = cfg.model.get("seq_len") or cfg.dataset.get("seq_len")
    if seq_len is None:
        return None
    seq_len, limit = int(seq_len), max_positions(config)
    extra = 1 if cfg.model.phase == "decode" else 0
    if seq_len < 1 or (limit and seq_len + extra > limit):
        raise UserError(f"model '{cfg.model.name}': seq_len={seq_len} is out of range "
                        f"(1..{limit - extra if limit else 'inf'} for this architecture and phase)")
    return seq_len


def build(cfg: DictConfig, device: str, dtype: torch.dtype) -> ModelBundle:
    """A transformers text model plus one batch of token ids, for the prefill or the decode phase."""
    model, placement = load_model(cfg, device, dtype)
    first_device = str(model.get_input_embeddings().weight.device)
    seq_len = wanted_seq_len(cfg, model.config)
    inputs, how = token_batch(cfg, model.config, first_device, seq_len)
    phase = str(cfg.model.phase)
    facts = {"phase": phase, "seq_len": int(inputs["input_ids"].shape[1]),
             "input_shape": list(inputs["input_ids"].shape), "token_source": how}
    if phase == "decode":
        from ngbench.models.decode import decode_bundle

        return decode_bundle(cfg, model, inputs, facts, placement)
    outputs = list(cfg.model.outputs)
    return ModelBundle(model=SelectOutputs(model, outputs).eval(), kwargs=inputs, task=str(cfg.model.task),
                       input_names=list(inputs), output_names=outputs, facts=facts, placement=prefixed(placement, "model"))
