"""torchvision detectors (Faster R-CNN, Mask R-CNN): the model from its torchvision builder and kwargs, and
a list of float image tensors as input (their GeneralizedRCNNTransform resizes and normalises inside the
model, so that work is profiled as part of the inference, as in a real deployment)."""

from __future__ import annotations

import torch
from omegaconf import DictConfig
from torch import nn

from ngbench.datasets import load_images
from ngbench.models.base import ModelBundle
from ngbench.models.hf_common import plain
from ngbench.models.weights import params_on_meta, pretrained_failed


def builder_kwargs(model_cfg: DictConfig, tiny: bool = True) -> dict:
    """The builder kwargs: `kwargs` with `overrides` merged in (`tiny=False` ignores them)."""
    kwargs = dict(plain(model_cfg.get("kwargs")) or {})
    if tiny:
        kwargs.update(plain(model_cfg.get("overrides")) or {})
    return kwargs


def freeze_batchnorm(model: nn.Module) -> nn.Module:
    """BatchNorm2d -> torchvision FrozenBatchNorm2d (identity statistics), the layer type the pretrained
    detectors use: torchvision only picks it when backbone weights are loaded."""
    from torchvision.ops.misc import FrozenBatchNorm2d

    for name, child in list(model.named_children()):
        if isinstance(child, nn.BatchNorm2d):
            frozen = FrozenBatchNorm2d(child.num_features, eps=child.eps)
            setattr(model, name, frozen.to(child.weight.device))
        else:
            freeze_batchnorm(child)
    return model


def random_model(model_cfg: DictConfig, tiny: bool = True) -> nn.Module:
    """The detector with torchvision's own (cheap, default) init, frozen batch norms, no download."""
    from torchvision.models import detection

    builder = getattr(detection, str(model_cfg.torchvision_builder))
    model = builder(weights=None, weights_backbone=None, **builder_kwargs(model_cfg, tiny))
    return freeze_batchnorm(model)


def build_meta(model_cfg: DictConfig, tiny: bool = False) -> nn.Module:
    """The detector with its parameters on the meta device (for counting)."""
    with params_on_meta():
        return random_model(model_cfg, tiny)


def pretrained_model(model_cfg: DictConfig) -> nn.Module:
    """The detector with its torchvision weights (`weights_enum`), or a state dict at model.path."""
    from torchvision.models import detection

    builder = getattr(detection, str(model_cfg.torchvision_builder))
    kwargs = builder_kwargs(model_cfg, tiny=False)
    source = str(model_cfg.get("path") or model_cfg.weights_enum)
    try:
        if model_cfg.get("path"):
            model = builder(weights=None, weights_backbone=None, **kwargs)
            model.load_state_dict(freeze_batchnorm_state(torch.load(source, map_location="cpu")))
            return freeze_batchnorm(model)
        enum_name, _, member = str(model_cfg.weights_enum).rpartition(".")
        weights = getattr(getattr(detection, enum_name), member)
        return builder(weights=weights, **kwargs)
    except Exception as exc:  # offline, bad path, wrong state dict: all one line for the user
        raise pretrained_failed(str(model_cfg.name), source, exc) from exc


def freeze_batchnorm_state(state: dict) -> dict:
    """A state dict as saved from the detector (FrozenBatchNorm2d has no num_batches_tracked)."""
    return {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}


def image_tensors(cfg: DictConfig, device: str, dtype: torch.dtype) -> tuple[list[torch.Tensor], list]:
    """The batch as a list of [3, H, W] float tensors in [0, 1] (what torchvision detectors take)."""
    from torchvision.transforms.functional import pil_to_tensor

    images = load_images(cfg.dataset, cfg.batch_size, cfg.seed)
    tensors = [(pil_to_tensor(image).to(torch.float32) / 255.0).to(device=device, dtype=dtype)
               for image in images]
    return tensors, [list(image.size) for image in images]


def build(cfg: DictConfig, device: str, dtype: torch.dtype) -> ModelBundle:
    """A torchvision detector plus one batch of images; detections are capped by box_detections_per_img."""
    model_cfg = cfg.model
    torch.manual_seed(cfg.seed)
    if model_cfg.weights == "pretrained":
        model = pretrained_model(model_cfg)
    else:
        with torch.device(device):
            model = random_model(model_cfg)
    model = model.to(device=device, dtype=dtype).eval()
    images, sizes = image_tensors(cfg, device, dtype)
    return ModelBundle(
        model=model,
        args=(images,),
        task=str(model_cfg.task),
        input_names=[f"image_{i}" for i in range(len(images))],
        output_names=list(model_cfg.outputs),
        facts={"image_sizes": sizes, "min_size": model.transform.min_size[0],
               "max_size": model.transform.max_size},
    )
