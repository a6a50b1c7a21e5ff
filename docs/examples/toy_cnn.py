"""Example of a user builder for ngbench: a small CNN fed with the run's dataset images."""

from __future__ import annotations

import torch
from torch import nn

from ngbench.datasets import load_images
from ngbench.models.base import ModelBundle


def build(cfg, device: str, dtype: torch.dtype) -> ModelBundle:
    """Build the model, preprocess one batch of the dataset, return both as a ModelBundle."""
    from torchvision.transforms import v2

    width = int(cfg.model.width)
    model = nn.Sequential(
        nn.Conv2d(3, width, 3, stride=2, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
        nn.Conv2d(width, width * 2, 3, stride=2, padding=1), nn.BatchNorm2d(width * 2), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width * 2, 1000),
    ).to(device=device, dtype=dtype).eval()
    size = int(cfg.model.image_size)
    preprocess = v2.Compose([v2.PILToTensor(), v2.Resize(size), v2.CenterCrop(size),
                             v2.ToDtype(torch.float32, scale=True),
                             v2.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    images = load_images(cfg.dataset, int(cfg.batch_size), int(cfg.seed))
    pixels = torch.stack([preprocess(image) for image in images]).to(device=device, dtype=dtype)
    return ModelBundle(model=model, args=(pixels,), task=str(cfg.model.task),
                       input_names=["pixel_values"], output_names=["logits"],
                       facts={"image_sizes": [list(image.size) for image in images]})
