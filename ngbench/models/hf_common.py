"""Shared by the transformers builders: the architecture config from the model YAML, the module with random
(meta-built) or pretrained weights, spread over several devices when the platform lists them."""

from __future__ import annotations

from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from ngbench.errors import UserError
from ngbench.models import placement as placement_mod
from ngbench.models.weights import materialise, params_on_meta, pretrained_failed
from ngbench.platform import spread_devices


def plain(node: Any) -> Any:
    """An OmegaConf node (or anything) as plain Python containers."""
    if isinstance(node, DictConfig) or OmegaConf.is_config(node):
        return OmegaConf.to_container(node, resolve=True)
    return node


def transformers_attr(name: str, what: str) -> Any:
    """`transformers.<name>`, or a UserError naming the missing class."""
    import transformers

    try:
        return getattr(transformers, name)
    except AttributeError as exc:
        raise UserError(f"{what} '{name}' is not in transformers {transformers.__version__}") from exc


def architecture_values(model_cfg: DictConfig, tiny: bool = True) -> dict:
    """The model's `config` values with `overrides` merged in (deep merge; `tiny=False` ignores them)."""
    values = OmegaConf.create(plain(model_cfg.get("config")) or {})
    if tiny and model_cfg.get("overrides"):
        values = OmegaConf.merge(values, model_cfg.overrides)
    return plain(values)


def make_config(model_cfg: DictConfig, tiny: bool = True):
    """The transformers `*Config` named by `config_class`, built from the YAML values (no hub access)."""
    config_class = transformers_attr(model_cfg.config_class, "config class")
    config = config_class(**architecture_values(model_cfg, tiny))
    if model_cfg.get("attn_implementation"):
        # the top-level model only: a backbone sub-config (ResNet, Swin) keeps its own default
        config._attn_implementation = {"": str(model_cfg.attn_implementation)}
    return config


def model_class(model_cfg: DictConfig):
    """The transformers model class named by `model_class` (e.g. LlamaForCausalLM)."""
    return transformers_attr(model_cfg.model_class, "model class")


def build_meta(model_cfg: DictConfig, tiny: bool = False) -> nn.Module:
    """The full-size (or tiny) module with its parameters on the meta device: for counting parameters."""
    with params_on_meta():
        return model_class(model_cfg)(make_config(model_cfg, tiny))


def load_model(cfg: DictConfig, device: str, dtype: torch.dtype) -> tuple[nn.Module, dict]:
    """The eval-mode transformers module on `device` in `dtype` and its placement (module -> device)."""
    model_cfg = cfg.model
    devices = spread_devices(cfg.platform, device)
    if model_cfg.weights == "pretrained":
        return load_pretrained(model_cfg, devices, dtype)
    with params_on_meta():
        model = model_class(model_cfg)(make_config(model_cfg))
    plan = placement_mod.plan(model, devices) if len(devices) > 1 else {}
    materialise(model, placement_mod.device_lookup(plan, devices[0]), dtype, cfg.seed)
    if plan:
        plan = placement_mod.dispatch(model, plan)
    return model.eval(), plan


HUB_PROBE_TIMEOUT_S = 3.0
PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")


def hub_offline_reason() -> str | None:
    """Why the Hugging Face hub cannot be asked for files now, or None when it can: HF_HUB_OFFLINE is set,
    or a short TCP connection to its endpoint fails. Without this, an offline from_pretrained spends about
    30 s in huggingface_hub's retries before it gives up. With a proxy configured the probe is skipped
    (only the proxy can tell)."""
    import os
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE=1 is set, so only the local cache is read"
    if any(os.environ.get(name) for name in PROXY_VARIABLES):
        return None
    endpoint = urlparse(constants.ENDPOINT)
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        socket.create_connection((endpoint.hostname, port), timeout=HUB_PROBE_TIMEOUT_S).close()
    except OSError as exc:
        return (f"{endpoint.hostname}:{port} is unreachable ({exc.strerror or exc}) and the local cache was "
                f"tried instead; set HF_HUB_OFFLINE=1 to skip this check")
    return None


def load_pretrained(model_cfg: DictConfig, devices: list[str], dtype: torch.dtype) -> tuple[nn.Module, dict]:
    """from_pretrained(hub id or model.path); UserError when it cannot be reached (offline, gated...).
    Offline, only the local cache is read, at once."""
    from pathlib import Path

    source = model_cfg.get("path") or model_cfg.hub_id
    offline = None if Path(str(source)).expanduser().exists() else hub_offline_reason()
    kwargs: dict[str, Any] = {"dtype": dtype, **({"local_files_only": True} if offline else {})}
    if model_cfg.get("attn_implementation"):
        kwargs["attn_implementation"] = {"": str(model_cfg.attn_implementation)}  # not the backbone's
    if len(devices) > 1:
        kwargs["device_map"] = "auto"
        kwargs["max_memory"] = placement_mod.max_memory(devices)
    try:
        model = model_class(model_cfg).from_pretrained(source, **kwargs)
    except Exception as exc:  # offline, gated, missing files, bad path: all one line for the user
        raise pretrained_failed(model_cfg.name, source, exc, offline) from exc
    if len(devices) > 1:
        plan = {name: str(dev) for name, dev in getattr(model, "hf_device_map", {}).items()}
        return model.eval(), plan
    return model.to(devices[0]).eval(), {}
