"""transformers vision models (ViT, Swin, DETR, MaskFormer, SegFormer): the module from its `*Config`
values, and pixel inputs made by the checkpoint's own image processor, constructed offline from the
processor values in the model YAML."""

from __future__ import annotations

import torch
from omegaconf import DictConfig

from ngbench.datasets import load_images
from ngbench.models.base import ModelBundle
from ngbench.models.hf_common import build_meta as hf_build_meta
from ngbench.models.hf_common import load_model, plain, transformers_attr
from ngbench.models.outputs import SelectOutputs
from ngbench.models.placement import prefixed

__all__ = ["align_float_inputs", "build", "build_meta", "make_processor", "pixel_inputs"]
build_meta = hf_build_meta


def make_processor(model_cfg: DictConfig):
    """The image processor named in `processor.class`, with the checkpoint's values (no hub access)."""
    values = dict(plain(model_cfg.processor))
    processor_class = transformers_attr(values.pop("class"), "image processor")
    return processor_class(**values)


def pixel_inputs(cfg: DictConfig, device: str, dtype: torch.dtype) -> tuple[dict, list]:
    """One batch through the image processor: the model inputs named in `model.inputs` on `device`
    (float ones in `dtype`), and the original image sizes."""
    images = load_images(cfg.dataset, cfg.batch_size, cfg.seed)
    processed = make_processor(cfg.model)(images=images, return_tensors="pt")
    inputs = {}
    for name in cfg.model.inputs:
        tensor = processed[name]
        tensor = tensor.to(dtype) if tensor.is_floating_point() else tensor
        inputs[name] = tensor.to(device)
    return inputs, [list(image.size) for image in images]


def align_float_inputs(model: torch.nn.Module, class_names: list[str]) -> int:
    """Pre-hooks on the modules of the named classes that cast their float positional inputs to the
    dtype of the first one. Works around layers that build an fp32 mask inside (MaskFormerSwin's
    shifted-window mask in transformers 5.17), which breaks fp16/bf16; a no-op where dtypes agree."""

    def hook(_module, args):
        first = args[0] if args and isinstance(args[0], torch.Tensor) else None
        if first is None:
            return None
        return tuple(a.to(first.dtype) if isinstance(a, torch.Tensor) and a.is_floating_point()
                     and a.dtype != first.dtype else a for a in args)

    hooked = 0
    for module in model.modules():
        if type(module).__name__ in class_names:
            module.register_forward_pre_hook(hook)
            hooked += 1
    return hooked


def build(cfg: DictConfig, device: str, dtype: torch.dtype) -> ModelBundle:
    """A transformers vision model (random or pretrained weights) plus one processed batch of images."""
    model, placement = load_model(cfg, device, dtype)
    if cfg.model.align_float_inputs:
        align_float_inputs(model, list(cfg.model.align_float_inputs))
    first_device = next(model.parameters()).device
    inputs, sizes = pixel_inputs(cfg, str(first_device), dtype)
    outputs = list(cfg.model.outputs)
    return ModelBundle(
        model=SelectOutputs(model, outputs).eval(),
        kwargs=inputs,
        task=str(cfg.model.task),
        input_names=list(inputs),
        output_names=outputs,
        facts={"image_sizes": sizes, "input_shape": list(inputs[cfg.model.inputs[0]].shape)},
        placement=prefixed(placement, "model"),
    )
