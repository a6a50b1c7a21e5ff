"""Profile any nn.Module: a model YAML with `_target_` (a class or factory, instantiated the Hydra way with
the arguments under `init`) and `inputs` (name, shape without the batch dimension, dtype: float | long)."""

from __future__ import annotations

import torch
from omegaconf import DictConfig

from ngbench.errors import UserError, first_line
from ngbench.models.base import ModelBundle
from ngbench.models.hf_common import plain
from ngbench.models.weights import count_parameters

INT_DTYPES = {"long": torch.long, "int64": torch.long, "int": torch.int32, "int32": torch.int32,
              "bool": torch.bool}


def instantiate(model_cfg: DictConfig) -> torch.nn.Module:
    """`_target_(**init)`; UserError when it fails or does not give an nn.Module."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate as hydra_instantiate

    spec = {"_target_": str(model_cfg._target_), **(plain(model_cfg.get("init")) or {})}
    try:
        module = hydra_instantiate(spec)
    except InstantiationException as exc:
        raise UserError(f"model '{model_cfg.get('name')}': cannot instantiate {spec['_target_']}: "
                        f"{first_line(exc)}") from exc
    if not isinstance(module, torch.nn.Module):
        raise UserError(f"model '{model_cfg.get('name')}': {spec['_target_']} gave "
                        f"{type(module).__name__}, not a torch.nn.Module")
    return module


def make_input(spec: dict, batch_size: int, device: str, dtype: torch.dtype, generator) -> torch.Tensor:
    """One input tensor [batch_size, *shape]: normal floats, or integers in [0, high)."""
    shape = (batch_size, *[int(s) for s in spec.get("shape", [])])
    kind = str(spec.get("dtype", "float"))
    if kind in INT_DTYPES:
        high = int(spec.get("high", 2))
        tensor = torch.randint(0, high, shape, generator=generator, dtype=torch.long).to(INT_DTYPES[kind])
    elif kind == "float":
        tensor = torch.randn(shape, generator=generator).to(dtype)
    else:
        raise UserError(f"input '{spec.get('name')}': dtype '{kind}' is not valid: use float, "
                        f"{', '.join(INT_DTYPES)}")
    return tensor.to(device)


def build(cfg: DictConfig, device: str, dtype: torch.dtype) -> ModelBundle:
    """The `_target_` module on `device` in `dtype` with seeded inputs of the shapes in `inputs`."""
    model_cfg = cfg.model
    if not model_cfg.get("inputs"):
        raise UserError(f"model '{model_cfg.get('name')}': a _target_ model needs `inputs` "
                        f"(list of {{name, shape, dtype}})")
    torch.manual_seed(int(cfg.get("seed", 0)))
    model = instantiate(model_cfg).to(device=device, dtype=dtype).eval()
    generator = torch.Generator().manual_seed(int(cfg.get("seed", 0)))
    specs = [dict(plain(spec)) for spec in model_cfg.inputs]
    args = tuple(make_input(spec, int(cfg.batch_size), device, dtype, generator) for spec in specs)
    return ModelBundle(
        model=model,
        args=args,
        task=str(model_cfg.get("task") or "custom"),
        param_count=count_parameters(model),
        input_names=[str(spec.get("name", f"input_{i}")) for i, spec in enumerate(specs)],
        output_names=list(model_cfg.get("outputs") or ["output"]),
        facts={"input_shapes": [list(a.shape) for a in args]},
    )
