"""Spread a model over several devices (platform.devices: [cuda:0, cuda:1] or [cuda:0, cpu]), the way
accelerate's device_map does it: the repeated blocks are cut into contiguous runs of about equal size, the
modules before them go to the first device, those after them to the last, and a pre-hook on each placed
module moves its inputs to the module's device. Planning works on meta tensors (nothing is allocated)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def largest_block_list(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """The nn.ModuleList holding the most parameters (the transformer layers), with its path."""
    best: tuple[str, nn.ModuleList] | None = None
    best_size = -1
    for path, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) > 1:
            size = sum(p.numel() for p in module.parameters())
            if size > best_size:
                best, best_size = (path, module), size
    if best is None:
        raise ValueError(f"{type(model).__name__} has no list of repeated blocks to spread over devices")
    return best


def contiguous_split(sizes: list[int], parts: int) -> list[int]:
    """Part index of each item: contiguous runs whose totals are as close to sum/parts as possible."""
    total = sum(sizes) or 1
    owner, running = [], 0
    for size in sizes:
        owner.append(min(parts - 1, int((running + size / 2) * parts / total)))
        running += size
    return owner


def plan(model: nn.Module, devices: list[str]) -> dict[str, str]:
    """module path -> device; '' is the default for everything not named (the modules before the blocks)."""
    blocks_path, blocks = largest_block_list(model)
    sizes = [sum(p.numel() for p in block.parameters()) for block in blocks]
    placement = {"": devices[0]}
    for index, part in enumerate(contiguous_split(sizes, len(devices))):
        placement[f"{blocks_path}.{index}"] = devices[part]
    after = False
    for path, _module in model.named_modules():
        if path == blocks_path:
            after = True
        elif after and path and not path.startswith(blocks_path + ".") and is_top_after(path, placement):
            placement[path] = devices[-1]
    return placement


def is_top_after(path: str, placement: dict[str, str]) -> bool:
    """True when no ancestor of `path` is already placed (only the outermost module after the blocks)."""
    parts = path.split(".")
    return not any(".".join(parts[:i]) in placement for i in range(1, len(parts)))


def device_lookup(placement: dict[str, str], default: str) -> Callable[[str], str]:
    """module path -> device by the longest placed prefix."""

    def device_of(path: str) -> str:
        parts = path.split(".") if path else []
        for i in range(len(parts), -1, -1):
            key = ".".join(parts[:i])
            if key in placement:
                return placement[key]
        return default

    return device_of


def move(value, device: torch.device):
    """Tensors (also inside tuples, lists, dicts) moved to `device`; anything else unchanged."""
    if isinstance(value, torch.Tensor):
        return value.to(device, non_blocking=True) if value.device != device else value
    if isinstance(value, tuple | list):
        return type(value)(move(v, device) for v in value)
    if isinstance(value, dict):
        return {k: move(v, device) for k, v in value.items()}
    return value


def dispatch(model: nn.Module, placement: dict[str, str]) -> dict[str, str]:
    """Pre-hooks that move each placed module's inputs to where its weights are; returns the placement
    as it really is (a tied weight, e.g. GPT-2's lm_head, stays where it was first placed)."""
    modules = dict(model.named_modules())
    actual = dict(placement)
    for path, device in placement.items():
        if not path:
            continue
        module = modules[path]
        first = next(module.parameters(), None)
        target = first.device if first is not None else torch.device(device)
        actual[path] = str(target)

        def hook(_module, args, kwargs, target=target):
            return move(args, target), move(kwargs, target)

        module.register_forward_pre_hook(hook, with_kwargs=True)
    return actual


def prefixed(placement: dict[str, str], prefix: str) -> dict[str, str]:
    """The placement with module paths as seen from a wrapper that holds the model as `prefix`."""
    return {f"{prefix}.{path}" if path else prefix: device for path, device in placement.items()}


def max_memory(devices: list[str]) -> dict:
    """Free memory per device for transformers' device_map='auto' (90% of what is free now)."""
    limits: dict = {}
    for name in devices:
        device = torch.device(name)
        if device.type == "cuda":
            free, _total = torch.cuda.mem_get_info(device.index or 0)
            limits[device.index or 0] = int(free * 0.9)
        else:
            import psutil

            limits["cpu"] = int(psutil.virtual_memory().available * 0.9)
    return limits
