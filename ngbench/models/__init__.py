"""Model registry: `build_bundle` imports the builder named in the model YAML (`builder`, a dotted path to
`build(cfg, device, dtype) -> ModelBundle`) and calls it. A YAML with only `_target_` gets the generic
nn.Module builder (ngbench.models.custom). No model names are tested anywhere in here."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from omegaconf import DictConfig

from ngbench.errors import UserError
from ngbench.models.base import ModelBundle

GENERIC_BUILDER = "ngbench.models.custom.build"


def import_object(dotted: str, what: str) -> Callable:
    """`package.module.name` -> the object; UserError naming the path when it does not import."""
    module_name, _, attr = str(dotted).rpartition(".")
    if not module_name:
        raise UserError(f"{what} '{dotted}' is not a dotted path (package.module.function)")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UserError(f"{what} '{dotted}': cannot import module '{module_name}' ({exc})") from exc
    if not hasattr(module, attr):
        raise UserError(f"{what} '{dotted}': module '{module_name}' has no '{attr}'")
    return getattr(module, attr)


def builder_path(model_cfg: DictConfig) -> str:
    """The dotted path of the model's builder (the generic one for a `_target_`-only YAML)."""
    if model_cfg.get("builder"):
        return str(model_cfg.builder)
    if model_cfg.get("_target_"):
        return GENERIC_BUILDER
    raise UserError(f"model '{model_cfg.get('name')}' names no builder: set model.builder "
                    f"(package.module.build) or model._target_ (an nn.Module class)")


def build_bundle(cfg: DictConfig, device: str, dtype) -> ModelBundle:
    """Build the model of `cfg.model` and one batch of inputs on `device` in `dtype` (torch.dtype or
    'fp32'/'fp16'/'bf16'); returns the ModelBundle with param_count and facts filled in."""
    from ngbench.models.weights import count_parameters, torch_dtype

    dtype = torch_dtype(dtype)
    build = import_object(builder_path(cfg.model), "model.builder")
    bundle = build(cfg, device, dtype)
    if not isinstance(bundle, ModelBundle):
        raise UserError(f"model.builder '{builder_path(cfg.model)}' returned {type(bundle).__name__}, "
                        f"not a ModelBundle")
    if not bundle.param_count:
        bundle.param_count = count_parameters(bundle.model)
    bundle.task = bundle.task or str(cfg.model.get("task") or "")
    bundle.facts.setdefault("model", str(cfg.model.get("name")))
    if "weights" in cfg.model:   # a user's model without a schema may have no such key
        bundle.facts.setdefault("weights", str(cfg.model.weights))
    bundle.facts.setdefault("param_count", bundle.param_count)
    if cfg.model.get("params_published"):
        bundle.facts.setdefault("params_published", int(cfg.model.params_published))
    if bundle.placement:
        bundle.facts.setdefault("placement", dict(bundle.placement))
    return bundle


def full_size_param_count(model_cfg: DictConfig) -> int:
    """Parameters of the full-size model (overrides ignored), counted on the meta device. The builder's
    module must offer `build_meta(model_cfg, tiny=False)`."""
    from ngbench.models.weights import count_parameters

    module = importlib.import_module(builder_path(model_cfg).rpartition(".")[0])
    if not hasattr(module, "build_meta"):
        raise UserError(f"builder module '{module.__name__}' has no build_meta(model_cfg) to count parameters")
    return count_parameters(module.build_meta(model_cfg, tiny=False))
