"""Random weights without a CPU initialisation: build parameters on the meta device, then materialise them
on the target device(s) with a cheap deterministic init; plus parameter counting and weight-loading errors."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

from ngbench.errors import UserError, first_line

INIT_STD = 0.02  # normal(0, 0.02) for weights: the usual transformer init, safe in fp16 (no overflow)
CPU_CHUNK = 1 << 24  # CPU tensors above this many elements are filled in parallel chunks


@contextmanager
def params_on_meta() -> Iterator[None]:
    """Register every new nn.Parameter on the meta device; buffers stay real (they are small and often
    computed in __init__: rotary frequencies, position ids, frozen batch-norm statistics).

    Each parameter is created by its module as an *uninitialised* CPU tensor (torch.empty allocates
    without touching pages) and replaced at once by a meta tensor, so nothing of size is ever written.
    """
    original = nn.Module.register_parameter

    def register(module: nn.Module, name: str, param: nn.Parameter | None) -> None:
        original(module, name, param)
        if param is not None and param.device.type != "meta":
            meta = nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)
            module._parameters[name] = meta

    nn.Module.register_parameter = register
    try:
        with torch.device("cpu"):
            yield
    finally:
        nn.Module.register_parameter = original


def count_parameters(model: nn.Module) -> int:
    """Number of distinct parameters (tied weights counted once); works on meta tensors."""
    return sum(p.numel() for p in model.parameters())


def is_norm(module: nn.Module) -> bool:
    """Normalisation layers (LayerNorm, RMSNorm, BatchNorm, GroupNorm, ...): their weight starts at one."""
    if isinstance(module, nn.LayerNorm | nn.GroupNorm | nn.modules.batchnorm._NormBase | nn.RMSNorm):
        return True
    return "norm" in type(module).__name__.lower()


def fill_normal(tensor: torch.Tensor, std: float) -> None:
    """normal_(0, std); big CPU tensors in parallel chunks, each with its own generator seeded from the
    global RNG, so the values do not depend on the thread count (torch's CPU normal_ is one thread)."""
    if tensor.device.type != "cpu" or tensor.numel() <= CPU_CHUNK or not tensor.is_contiguous():
        tensor.normal_(0.0, std)
        return
    from concurrent.futures import ThreadPoolExecutor

    flat = tensor.view(-1)
    starts = range(0, flat.numel(), CPU_CHUNK)
    seeds = torch.randint(0, 2**62, (len(starts),)).tolist()

    def fill(index: int) -> None:
        generator = torch.Generator().manual_seed(seeds[index])
        flat[starts[index]:starts[index] + CPU_CHUNK].normal_(0.0, std, generator=generator)

    with ThreadPoolExecutor(max_workers=max(1, torch.get_num_threads())) as pool:
        list(pool.map(fill, range(len(starts))))


def init_tensor(module: nn.Module, name: str, tensor: torch.Tensor) -> None:
    """Cheap deterministic init: biases 0, norm weights 1, everything else normal(0, 0.02)."""
    with torch.no_grad():
        if name.endswith("bias"):
            tensor.zero_()
        elif is_norm(module) and name == "weight":
            tensor.fill_(1.0)
        else:
            fill_normal(tensor, INIT_STD)


def materialise(model: nn.Module, device_of: Callable[[str], str], dtype: torch.dtype, seed: int) -> nn.Module:
    """Give every meta parameter real storage on `device_of(module_path)` in `dtype`, initialised with
    `init_tensor`; tied parameters stay tied. Buffers follow their module's device."""
    torch.manual_seed(seed)
    made: dict[int, nn.Parameter] = {}
    for path, module in model.named_modules():
        device = device_of(path)
        for name, param in list(module._parameters.items()):
            if param is None:
                continue
            if id(param) in made:
                module._parameters[name] = made[id(param)]
                continue
            if param.device.type == "meta":
                dtype_here = dtype if param.is_floating_point() else param.dtype
                data = torch.empty(param.shape, dtype=dtype_here, device=device)
                init_tensor(module, name, data)
            else:
                data = param.data.to(device=device, dtype=dtype if param.is_floating_point() else None)
            new = nn.Parameter(data, requires_grad=False)
            made[id(param)] = new
            module._parameters[name] = new
        for name, buffer in list(module._buffers.items()):
            if buffer is not None:
                cast = dtype if buffer.is_floating_point() else None
                module._buffers[name] = buffer.to(device=device, dtype=cast)
    return model


def torch_dtype(precision: str | torch.dtype) -> torch.dtype:
    """fp32/fp16/bf16 (the config's precision; or a torch.dtype) -> torch.dtype."""
    if isinstance(precision, torch.dtype):
        return precision
    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]


def pretrained_failed(model_name: str, source: str, exc: BaseException, offline: str | None = None) -> UserError:
    """The one-line error for weights that could not be loaded (offline, bad path, gated repo...); `offline`
    says why the hub was not asked (ngbench.models.hf_common.hub_offline_reason)."""
    reason = f"not in the local cache: {offline}" if offline else first_line(exc)[:200]
    return UserError(
        f"model '{model_name}': cannot load pretrained weights from '{source}' ({reason}); "
        f"connect to the network, set model.path to a local copy, or use model.weights=random")
