"""The typed run config: dataclass schemas that Hydra composes the YAML of conf/ into.

The dataclasses keep the types and the defaults; the YAML files keep facts (a model's architecture, a
dataset's sizes) and extend their schema through their defaults list (`- /schema_dataset_coco@_here_`).
Hydra rejects a wrong type or an unknown choice while composing; `unknown_keys` finds the keys that
Hydra's `+key=value` adds past a schema. The schemas of models live in ngbench.models.config, those of
flows beside each flow (ngbench/flows/<name>/config.py); ngbench.cli stores them all in Hydra's
ConfigStore.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from omegaconf import MISSING, DictConfig, ListConfig, OmegaConf

# Hydra's ConfigStore names of the schemas a YAML can extend (root-level, so they are no config group)
RUN_SCHEMA = "schema_run"
SCHEMA_PREFIX = "schema_"


class Choice(str, Enum):
    """A config choice that compares, prints and serialises as its value ("fp16", not "Precision.fp16")."""

    __str__ = str.__str__
    __format__ = str.__format__


class Precision(Choice):
    fp32 = "fp32"
    fp16 = "fp16"
    bf16 = "bf16"


class CalibrationMode(Choice):
    cached = "cached"   # measure once per host + library versions, then read the cache
    force = "force"     # measure again
    off = "off"         # price every profiler record at 0


class Device(Choice):
    auto = "auto"       # cuda when a GPU is visible, else cpu (resolved when the run starts)
    cpu = "cpu"
    cuda = "cuda"


class DataSource(Choice):
    auto = "auto"       # real when dataset.root is set, else sample
    real = "real"
    sample = "sample"   # generated offline with the real set's shapes


@dataclass
class PlatformConfig:
    """conf/platform/*.yaml: where the model runs."""

    name: str = MISSING
    device: Device = MISSING                # cpu | cuda | auto (cuda when a GPU is visible)
    index: int = 0                          # which GPU (cuda:<index>)
    threads: int | None = None           # torch intra-op threads; null keeps the library default
    devices: list[str] | None = None     # spread one model over several devices, e.g. [cuda:0,cuda:1]


@dataclass
class QuantConfig:
    """conf/quant/*.yaml, the optional group added with +quant=int8."""

    name: str = MISSING
    llm_int8_threshold: float = 6.0         # LLM.int8() outlier threshold (torch flow on CUDA)


@dataclass
class DatasetConfig:
    """What every dataset file has; a format's schema adds its own keys."""

    name: str = MISSING
    format: str = MISSING                   # which loader of ngbench.datasets reads it
    root: str | None = None              # the real data; null: the offline sample
    source: DataSource = DataSource.auto
    split: str = MISSING


@dataclass
class ImageSample:
    sizes: list[list[int]] = MISSING        # (width, height) of frequent images of the real set


@dataclass
class ImageFolderDatasetConfig(DatasetConfig):
    """<root>/<class>/<image> (or <root>/<split>/<class>/<image>)."""

    format: str = "imagefolder"
    sample: ImageSample = field(default_factory=ImageSample)


@dataclass
class CocoDatasetConfig(DatasetConfig):
    """COCO images with their instances JSON (pycocotools)."""

    format: str = "coco"
    images: str | None = None            # images directory relative to root (default: <split>)
    annotations: str | None = None       # instances JSON relative to root (default: annotations/instances_<split>.json)
    sample: ImageSample = field(default_factory=ImageSample)


@dataclass
class TextSample:
    words_median: float = MISSING           # paragraph lengths in words, log-normal
    words_sigma: float = MISSING


@dataclass
class TextDatasetConfig(DatasetConfig):
    """Text lines through Hugging Face datasets (a local copy at root, or the hub dataset)."""

    format: str = "text"
    hf_name: str | None = None
    text_column: str = "text"
    seq_len: int | None = None           # pin every sequence to this many tokens (a model's own seq_len wins)
    sample: TextSample = field(default_factory=TextSample)


@dataclass
class CalibrationConfig:
    """The profiler's host cost per recorded event, removed from the rebuilt timeline (wall_us)."""

    mode: CalibrationMode = CalibrationMode.cached
    dir: str = "outputs/calibration"
    scale_by_probe: bool = False  # each profiled block's prices times the host's speed then over at calibration


@dataclass
class RunConfig:
    """conf/config.yaml: one run = model x dataset x flow x platform (x quant) x precision x batch size.

    `model`, `dataset` and `flow` are typed by the schema their option's YAML extends (a user's model
    without one is taken as written)."""

    dataset: Any = MISSING
    model: Any = MISSING
    flow: Any = MISSING
    platform: PlatformConfig = MISSING
    quant: QuantConfig | None = None     # optional group: +quant=int8
    batch_size: int = 1
    precision: Precision = Precision.fp32
    warmup: int = 3              # untimed inferences before anything is measured
    iters: int = 30              # clean-timed inferences (no profiler), at least; spread over the blocks
    min_time_s: float = 1.2      # ... and clean timing lasts at least this long in all (MLPerf-style)
    profile_iters: int = 12      # inferences under the flow's profiler, spread over the blocks
    profile_warmup: int = 2      # unmarked inferences under the profiler before each block (start-up costs)
    blocks: int = 6              # clean and profiled blocks alternate this many times
    max_time_s: float | None = 60.0  # where the warm-up shows the above would take longer, fewer inferences
    #                                  (at least 3 blocks of one clean and one profiled); null: never fewer
    pin_cpus: list[int] | None = None  # run on these CPUs only, e.g. [2]; null: wherever the OS likes
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)
    seed: int = 0
    save_trace: bool = False     # also write trace.json (Chrome/Perfetto) of the profiled pass
    resume: bool = False         # skip a run whose output directory already holds an ok summary.json


DATASET_SCHEMAS = {"imagefolder": ImageFolderDatasetConfig, "coco": CocoDatasetConfig, "text": TextDatasetConfig}


def field_names(schema: type) -> list[str]:
    """The keys a schema allows."""
    return [f.name for f in dataclasses.fields(schema)]


def unknown_keys(node: Any, path: str = "") -> list[tuple[str, list[str]]]:
    """(full key, the valid keys there) of every key that is not in its node's schema. Hydra's `+key=value`
    adds keys even to a typed node, so these are found after composing."""
    found: list[tuple[str, list[str]]] = []
    if isinstance(node, DictConfig):
        schema = OmegaConf.get_type(node)
        valid = field_names(schema) if dataclasses.is_dataclass(schema) else None
        for key in node.keys():
            full = f"{path}.{key}" if path else str(key)
            if valid is not None and key not in valid:
                found.append((full, valid))
            elif not OmegaConf.is_missing(node, key) and not OmegaConf.is_interpolation(node, key):
                found += unknown_keys(node._get_node(key), full)
    elif isinstance(node, ListConfig) and not node._is_missing() and not node._is_none():
        for index in range(len(node)):
            found += unknown_keys(node._get_node(index), f"{path}[{index}]")
    return found


def unknown_key_message(full_key: str, valid: list[str]) -> str:
    """The one line for a key that is not in its schema, naming the valid ones (and the closest)."""
    import difflib

    name = full_key.rpartition(".")[2]
    close = difflib.get_close_matches(name, valid, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"unknown key '{full_key}'{hint}; valid keys there: {', '.join(valid)}"
