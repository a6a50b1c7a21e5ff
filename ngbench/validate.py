"""validate(cfg): every check that can fail before anything is built, each with one clear line."""

from __future__ import annotations

import os

from omegaconf import DictConfig

from ngbench.errors import UserError
from ngbench.platform import model_devices

PRECISIONS = ("fp32", "fp16", "bf16")
BYTES_PER_PARAM = {"fp32": 4, "fp16": 2, "bf16": 2}
SOURCES = ("auto", "real", "sample")


def _positive_int(cfg: DictConfig, key: str, minimum: int = 1) -> None:
    value = cfg.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        bound = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise UserError(f"{key}={value!r} is not valid; {key} must be {bound}")


def validate(cfg: DictConfig) -> None:
    """Check scalar knobs, the dataset, and the flow x quant x platform x precision combination."""
    _positive_int(cfg, "batch_size")
    _positive_int(cfg, "iters")
    _positive_int(cfg, "profile_iters")
    _positive_int(cfg, "warmup", minimum=0)
    _positive_int(cfg, "profile_warmup", minimum=0)
    _positive_int(cfg, "blocks")
    min_time = cfg.get("min_time_s")
    if isinstance(min_time, bool) or not isinstance(min_time, (int, float)) or min_time < 0:
        raise UserError(f"min_time_s={min_time!r} is not valid; min_time_s must be a number of seconds >= 0")
    if cfg.iters < cfg.blocks or cfg.profile_iters < cfg.blocks:
        raise UserError(f"iters={cfg.iters} and profile_iters={cfg.profile_iters} must each be at least "
                        f"blocks={cfg.blocks} (every block times and profiles at least one inference)")
    if cfg.precision not in PRECISIONS:
        raise UserError(f"precision={cfg.precision!r} is not valid; valid: {', '.join(PRECISIONS)}")
    _check_dataset(cfg.dataset)


def _check_dataset(dataset: DictConfig) -> None:
    source = dataset.get("source", "auto")
    if source not in SOURCES:
        raise UserError(f"dataset.source={source!r} is not valid; valid: {', '.join(SOURCES)}")
    root = dataset.get("root")
    if source == "real" and not root:
        raise UserError(f"dataset.source=real needs dataset.root (the {dataset.name} directory)")
    if root and not os.path.exists(os.path.expanduser(str(root))):
        raise UserError(f"dataset.root={root} does not exist (dataset {dataset.name}); "
                        "point it at the data or use dataset.source=sample")


def flow_options(cfg: DictConfig) -> dict:
    """The flow group's own knobs (everything but `_target_` and `name`)."""
    return {k: v for k, v in cfg.flow.items() if k not in ("_target_", "name")}


def check_combination(cfg: DictConfig, flow_class, ctx) -> None:
    """Ask the flow whether it can run this (platform, precision, quant); fail with its reason."""
    reason = flow_class.unsupported_reason(ctx, flow_options(cfg))
    if reason:
        quant = f" +quant={ctx.quant['name']}" if ctx.quant else ""
        raise UserError(f"flow={cfg.flow.name} platform={cfg.platform.name} precision={cfg.precision}{quant}: {reason}")


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
