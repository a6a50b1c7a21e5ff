"""Profile any nn.Module: a model YAML with `_target_` (a class or factory, instantiated the Hydra way with
the arguments under `init`) and `inputs` (name, shape without the batch dimension, dtype: float | long)."""

from __future__ import annotations

import torch
from omegaconf import DictConfig

from ngbench.errors import UserError
from ngbench.models.base import ModelBundle
from ngbench.models.config import CustomModelConfig, InputDtype, InputSpec
from ngbench.models.hf_common import plain
from ngbench.models.weights import count_parameters

INT_DTYPES = {InputDtype.long: torch.long, InputDtype.int64: torch.long, InputDtype.int: torch.int32,
              InputDtype.int32: torch.int32, InputDtype.bool: torch.bool}


def instantiate(model_cfg: DictConfig) -> torch.nn.Module:
    """`_target_(**init)` with `overrides` merged into init; UserError when it fails or gives no nn.Module."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate as hydra_instantiate

    spec = {"_target_": str(model_cfg._target_), **(plain(model_cfg.get("init")) or {}),
            **(plain(model_cfg.get("overrides")) or {})}
    try:
        module = hydra_instantiate(spec)
    except InstantiationException as exc:
        reason = " ".join(str(exc).split())[:300]   # Hydra puts the callee's own error on the next line
        raise UserError(f"model '{model_cfg.get('name')}': cannot instantiate {spec['_target_']}: {reason}") from exc
    if not isinstance(module, torch.nn.Module):
        raise UserError(f"model '{model_cfg.get('name')}': {spec['_target_']} gave "
                        f"{type(module).__name__}, not a torch.nn.Module")
    return module


def make_input(spec: InputSpec, batch_size: int, device: str, dtype: torch.dtype, generator) -> torch.Tensor:
    """One input tensor [batch_size, *shape]: normal floats, or integers in [0, high)."""
    shape = (batch_size, *spec.shape)
    if spec.dtype == InputDtype.float:
        tensor = torch.randn(shape, generator=generator).to(dtype)
    else:
        tensor = torch.randint(0, spec.high, shape, generator=generator, dtype=torch.long).to(INT_DTYPES[spec.dtype])
    return tensor.to(device)


def typed(model_cfg: DictConfig) -> DictConfig:
    """The model config on CustomModelConfig (already so when its YAML extends /schema_model_custom)."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    if issubclass(OmegaConf.get_type(model_cfg), CustomModelConfig):
        return model_cfg
    try:
        merged = OmegaConf.merge(CustomModelConfig, OmegaConf.to_container(model_cfg, resolve=True))
    except OmegaConfBaseException as exc:
        raise UserError(f"model '{model_cfg.get('name')}': {' '.join(str(exc).split())}") from exc
    if OmegaConf.is_missing(merged, "inputs"):
        raise UserError(f"model '{model_cfg.get('name')}': a _target_ model needs `inputs` (list of {{name, shape, dtype}})")
    return merged


def build(cfg: DictConfig, device: str, dtype: torch.dtype) -> ModelBundle:
    """The `_target_` module on `device` in `dtype` with seeded inputs of the shapes in `inputs`."""
    from omegaconf import OmegaConf

    model_cfg = typed(cfg.model)
    torch.manual_seed(cfg.seed)
    model = instantiate(model_cfg).to(device=device, dtype=dtype).eval()
    generator = torch.Generator().manual_seed(cfg.seed)
    specs: list[InputSpec] = [OmegaConf.to_object(spec) for spec in model_cfg.inputs]
    args = tuple(make_input(spec, cfg.batch_size, device, dtype, generator) for spec in specs)
    return ModelBundle(
        model=model,
        args=args,
        task=model_cfg.task,
        param_count=count_parameters(model),
        input_names=[spec.name for spec in specs],
        output_names=list(model_cfg.outputs),
        facts={"input_shapes": [list(a.shape) for a in args]},
    )
