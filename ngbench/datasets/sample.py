"""Offline sample data generated deterministically from a seed, with shapes true to the real sets: image
sizes drawn from the common ImageNet / COCO sizes, text lines with wikitext-like lengths."""

from __future__ import annotations

import numpy as np
from PIL import Image

# (width, height) of frequent ImageNet val / COCO val2017 images, used when the dataset config lists none.
DEFAULT_SIZES = [[500, 375], [500, 333], [375, 500], [640, 480], [640, 427], [427, 640]]

WORDS = (
    "the of and in to a was is for as on by with from at that his were it an which are be had "
    "first season game team album song war city new after during between school river series film "
    "also its her their he she they this who one two three years later until under found built "
    "system station released world state national group during north south number early known "
    "@-@ @,@ @.@ , . ; ( ) \" ' = century"
).split()


def images(sizes: list[list[int]], n: int, seed: int) -> list[Image.Image]:
    """`n` RGB images whose (width, height) are drawn from `sizes`: smooth colour gradients plus noise
    (cheap to make, and not constant, so resizing and normalisation see realistic values)."""
    rng = np.random.default_rng(seed)
    table = sizes or DEFAULT_SIZES
    out = []
    for _ in range(n):
        width, height = (int(v) for v in table[int(rng.integers(len(table)))])
        ramp_x = np.linspace(0, 1, width, dtype=np.float32)[None, :, None]
        ramp_y = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
        colour = rng.uniform(0, 1, size=(1, 1, 3)).astype(np.float32)
        base = 160 * (ramp_x * colour + ramp_y * (1 - colour))
        noise = rng.integers(0, 96, size=(height, width, 1), dtype=np.uint8)
        pixels = np.clip(base + noise, 0, 255).astype(np.uint8)
        out.append(Image.fromarray(pixels, mode="RGB"))
    return out


def texts(words_median: float, words_sigma: float, n: int, seed: int) -> list[str]:
    """`n` wikitext-like lines: word counts log-normal around `words_median`, words from a small
    wikitext-flavoured vocabulary (with its ' @-@ ' tokens), ending in ' . '."""
    rng = np.random.default_rng(seed)
    counts = np.clip(rng.lognormal(np.log(words_median), words_sigma, size=n), 4, 2000).astype(int)
    out = []
    for count in counts:
        picks = rng.integers(len(WORDS), size=int(count))
        out.append(" " + " ".join(WORDS[i] for i in picks) + " . ")
    return out
