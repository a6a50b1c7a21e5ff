"""validate(cfg): what the config's types cannot say, checked once before anything is built, each with one
clear line. Types, choices and unknown keys of a schema are Hydra's to reject while composing
(ngbench.config); the flow x platform x precision x quant rules are the flow config's `check(ctx)`."""

from __future__ import annotations

import os

from omegaconf import DictConfig, OmegaConf

from ngbench.config import Precision, unknown_key_message, unknown_keys
from ngbench.errors import UserError
from ngbench.flows.config import FlowConfig
from ngbench.platform import model_devices

BYTES_PER_PARAM = {Precision.fp32: 4, Precision.fp16: 2, Precision.bf16: 2}


def validate(cfg: DictConfig) -> None:
    """Unknown and missing keys, bounds, the dataset's data, and the keys model.overrides may set."""
    unknown = unknown_keys(cfg)
    if unknown:
        raise UserError(unknown_key_message(*unknown[0]))
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise UserError(f"{', '.join(missing)}: no value given (the schema requires one; set it in the YAML or "
                        "on the command line)")
    for key in ("batch_size", "iters", "profile_iters", "blocks"):
        _at_least(key, cfg[key], 1)
    for key in ("warmup", "profile_warmup", "min_time_s"):
        _at_least(key, cfg[key], 0)
    if cfg.max_time_s is not None and cfg.max_time_s <= 0:
        raise UserError(f"max_time_s={cfg.max_time_s} is not valid; max_time_s must be a positive number of "
                        "seconds, or null (never measure fewer inferences than configured)")
    if cfg.platform.threads is not None:
        _at_least("platform.threads", cfg.platform.threads, 1)
    _at_least("platform.index", cfg.platform.index, 0)
    if cfg.iters < cfg.blocks or cfg.profile_iters < cfg.blocks:
        raise UserError(f"iters={cfg.iters} and profile_iters={cfg.profile_iters} must each be at least "
                        f"blocks={cfg.blocks} (every block times and profiles at least one inference)")
    _check_dataset(cfg.dataset)
    _check_overrides(cfg.model)


def _at_least(key: str, value, minimum: int) -> None:
    if value < minimum:
        bound = "a positive number" if minimum == 1 else f"at least {minimum}"
        raise UserError(f"{key}={value} is not valid; {key} must be {bound}")


def _check_dataset(dataset: DictConfig) -> None:
    root = dataset.get("root")
    if dataset.get("source") == "real" and not root:
        raise UserError(f"dataset.source=real needs dataset.root (the {dataset.name} directory)")
    if root and not os.path.exists(os.path.expanduser(str(root))):
        raise UserError(f"dataset.root={root} does not exist (dataset {dataset.name}); "
                        "point it at the data or use dataset.source=sample")


def _check_overrides(model: DictConfig) -> None:
    """model.overrides may only set keys of the mapping its schema merges it into (ModelConfig.overrides_apply_to);
    a misspelt key would otherwise be ignored and the full-size model would run."""
    target = getattr(OmegaConf.get_type(model), "overrides_apply_to", None)
    if not target or not model.get("overrides"):
        return
    overrides = OmegaConf.to_container(model.overrides, resolve=True)
    valid = OmegaConf.to_container(model[target], resolve=True) or {}
    found = _first_unknown(overrides, valid, "model.overrides")
    if found:
        key, keys = found
        raise UserError(f"{key} is not a key of model.{target} of model={model.name}, so it would change nothing; "
                        f"valid: {', '.join(keys)} (add a key to model.{target} to override it)")


def _first_unknown(values: dict, valid: dict, path: str) -> tuple[str, list[str]] | None:
    for key, value in values.items():
        if key not in valid:
            return f"{path}.{key}", list(valid)
        if isinstance(value, dict) and isinstance(valid[key], dict):
            found = _first_unknown(value, valid[key], f"{path}.{key}")
            if found:
                return found
    return None


def flow_config(cfg: DictConfig) -> FlowConfig:
    """The flow group as its typed config object (the dataclass its YAML extends)."""
    if not issubclass(OmegaConf.get_type(cfg.flow) or dict, FlowConfig):
        raise UserError(f"flow={cfg.flow.get('name')} has no schema: its YAML must extend a flow's config "
                        "(defaults: [/schema_flow_<name>@_here_, _self_])")
    return OmegaConf.to_object(cfg.flow)


def check_combination(cfg: DictConfig, flow_cfg: FlowConfig, ctx) -> None:
    """Ask the flow whether it can run this (platform, precision, quant); fail with its reason."""
    reason = flow_cfg.check(ctx)
    if reason:
        quant = f" +quant={ctx.quant.name}" if ctx.quant else ""
        raise UserError(f"flow={flow_cfg.name} platform={cfg.platform.name} precision={cfg.precision}{quant}: {reason}")


def check_memory(cfg: DictConfig, device: str) -> None:
    """Refuse a model whose weights alone would not fit the memory of its device(s) (platform.devices)."""
    params = cfg.model.get("params_published")
    if not params or cfg.model.get("overrides"):
        return
    needed = int(params) * BYTES_PER_PARAM[cfg.precision]
    devices = model_devices(cfg.platform, device)
    available = sum(_available_bytes(d) or 0 for d in devices)
    if available and needed > 0.95 * available:
        raise UserError(
            f"model={cfg.model.name} needs about {needed / 2**30:.0f} GiB for its {cfg.precision} weights, "
            f"but {'+'.join(devices)} has {available / 2**30:.0f} GiB available; use a smaller precision, a bigger device, "
            "or shrink it with model.overrides")


def _available_bytes(device: str) -> int | None:
    if device.startswith("cuda"):
        import torch

        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None
