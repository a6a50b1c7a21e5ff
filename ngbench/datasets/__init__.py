"""Inputs for the model builders: images (ImageNet ImageFolder, COCO) and text (wikitext), real from
`dataset.root` or generated offline (`source: sample`). One API: load_images, load_texts, load_token_rows."""

from __future__ import annotations

from collections.abc import Callable

from omegaconf import DictConfig
from PIL import Image

from ngbench.datasets import images, sample, text
from ngbench.errors import UserError

IMAGE_LOADERS: dict[str, Callable[[DictConfig, int, int], list[Image.Image]]] = {
    "imagefolder": images.imagefolder,
    "coco": images.coco,
}


def source_of(ds_cfg: DictConfig) -> str:
    """'real' or 'sample': auto is real when a root is set."""
    if ds_cfg.source == "auto":
        return "real" if ds_cfg.root else "sample"
    return str(ds_cfg.source)


def load_images(ds_cfg: DictConfig, n: int, seed: int) -> list[Image.Image]:
    """`n` RGB images of the dataset (real or sample), chosen deterministically from `seed`."""
    fmt = str(ds_cfg.get("format"))
    if fmt not in IMAGE_LOADERS:
        raise UserError(f"dataset '{ds_cfg.get('name')}' (format {fmt}) holds no images: "
                        f"use an image dataset ({', '.join(IMAGE_LOADERS)})")
    if source_of(ds_cfg) == "sample":
        return sample.images(list(ds_cfg.sample.sizes), n, seed)
    return IMAGE_LOADERS[fmt](ds_cfg, n, seed)


def check_text(ds_cfg: DictConfig) -> None:
    if str(ds_cfg.get("format")) != "text":
        raise UserError(f"dataset '{ds_cfg.get('name')}' holds no text: use dataset=wikitext")


def sample_lines(ds_cfg: DictConfig, n: int, seed: int) -> list[str]:
    return sample.texts(ds_cfg.sample.words_median, ds_cfg.sample.words_sigma, n, seed)


def line_picker(ds_cfg: DictConfig) -> Callable[[int, int], list[str]]:
    """A function (n, seed) -> n lines; real lines are read once and then picked from memory."""
    check_text(ds_cfg)
    if source_of(ds_cfg) == "sample":
        return lambda n, seed: sample_lines(ds_cfg, n, seed)
    lines = text.wikitext_lines(ds_cfg)
    return lambda n, seed: [lines[i] for i in images.pick(len(lines), n, seed)]


def load_texts(ds_cfg: DictConfig, n: int, seed: int) -> list[str]:
    """`n` text lines (paragraphs) of the dataset, chosen deterministically from `seed`."""
    return line_picker(ds_cfg)(n, seed)


def load_token_rows(ds_cfg: DictConfig, rows: int, seq_len: int | None, seed: int,
                    tokenize: Callable[[str], list[int]]) -> list[list[int]]:
    """`rows` token-id sequences. With `seq_len`, lines are tokenised and concatenated (as in wikitext
    perplexity runs) and cut into rows of exactly `seq_len`; without, each row is one line at its own length."""
    lines_of = line_picker(ds_cfg)
    if not seq_len:
        return [tokenize(line) or [0] for line in lines_of(rows, seed)]
    need = rows * int(seq_len)
    stream: list[int] = []
    chunk, round_index = max(8, need // 64), 0
    while len(stream) < need:
        for line in lines_of(chunk, seed + 7919 * round_index):
            stream.extend(tokenize(line))
        round_index += 1
        if round_index > 1000:
            raise UserError(f"dataset '{ds_cfg.get('name')}': lines give no tokens to fill seq_len={seq_len}")
    return [stream[i * seq_len:(i + 1) * seq_len] for i in range(rows)]
