"""Real image sets on disk: ImageFolder (root/<class>/<image>, optionally under root/<split>/) and COCO
(an images directory plus an instances JSON read with pycocotools). Bad data raises UserError naming the file."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
from omegaconf import DictConfig
from PIL import Image, UnidentifiedImageError

from ngbench.errors import UserError, require

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".webp", ".tif", ".tiff", ".jpeg2000"}


def existing_root(ds_cfg: DictConfig) -> Path:
    """The dataset root as a Path; UserError when it is not set or does not exist."""
    if not ds_cfg.get("root"):
        raise UserError(f"dataset '{ds_cfg.name}': source=real needs dataset.root (a directory)")
    root = Path(str(ds_cfg.root)).expanduser()
    if not root.exists():
        raise UserError(f"dataset '{ds_cfg.name}': root {root} does not exist")
    return root


def pick(count: int, n: int, seed: int) -> list[int]:
    """`n` indices out of `count`, seeded; without repeats while there are enough, then cycling."""
    order = np.random.default_rng(seed).permutation(count)
    return [int(order[i % count]) for i in range(n)]


def open_rgb(path: Path) -> Image.Image:
    """The image at `path` decoded to RGB; UserError naming the file when it cannot be read."""
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise UserError(f"cannot read image {path}: {exc}") from exc


def imagefolder(ds_cfg: DictConfig, n: int, seed: int) -> list[Image.Image]:
    """`n` images from an ImageFolder tree: root/<class>/<img> (or root/<split>/<class>/<img>)."""
    root = existing_root(ds_cfg)
    split = ds_cfg.get("split")
    if split and (root / str(split)).is_dir():
        root = root / str(split)
    files = sorted(p for p in root.glob("*/*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise UserError(f"dataset '{ds_cfg.name}': no images under {root} "
                        f"(expected ImageFolder layout {root}/<class>/<image>.jpg)")
    return [open_rgb(files[i]) for i in pick(len(files), n, seed)]


def coco_paths(ds_cfg: DictConfig) -> tuple[Path, Path]:
    """(images directory, instances JSON) from root/split or the explicit `images`/`annotations` keys."""
    root = existing_root(ds_cfg)
    split = str(ds_cfg.get("split") or "val2017")
    images = root / str(ds_cfg.get("images") or split)
    annotations = root / str(ds_cfg.get("annotations") or f"annotations/instances_{split}.json")
    if not images.is_dir():
        raise UserError(f"dataset '{ds_cfg.name}': images directory {images} does not exist")
    if not annotations.is_file():
        raise UserError(f"dataset '{ds_cfg.name}': annotation file {annotations} does not exist")
    return images, annotations


def read_coco(annotations: Path):
    """pycocotools.COCO over the instances JSON (its progress prints silenced); UserError if unparsable."""
    coco_module = require("pycocotools.coco", "pycocotools", "the COCO dataset loader")
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return coco_module.COCO(str(annotations))
    except (ValueError, KeyError, TypeError, AssertionError) as exc:
        raise UserError(f"annotation file {annotations} is not valid COCO instances JSON: {exc}") from exc


def coco(ds_cfg: DictConfig, n: int, seed: int) -> list[Image.Image]:
    """`n` images of a COCO split, chosen (seeded) among the image ids of its instances JSON."""
    images, annotations = coco_paths(ds_cfg)
    index = read_coco(annotations)
    ids = sorted(index.getImgIds())
    if not ids:
        raise UserError(f"annotation file {annotations} lists no images")
    chosen = [ids[i] for i in pick(len(ids), n, seed)]
    out = []
    for entry in index.loadImgs(chosen):
        path = images / entry["file_name"]
        if not path.is_file():
            raise UserError(f"image {path} (id {entry['id']} in {annotations}) does not exist")
        out.append(open_rgb(path))
    return out
