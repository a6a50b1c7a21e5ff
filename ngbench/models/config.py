"""Schemas of the model group: `ModelConfig` (what every model has) and one schema per builder family, which
names its builder. A model YAML extends its family's schema (`- /schema_model_hf_text@_here_`) and keeps the
facts of the checkpoint it stands for; the defaults live here. Imports nothing heavy (no torch)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from omegaconf import MISSING

from ngbench.config import Choice


class Weights(Choice):
    random = "random"           # built from the config on the meta device, no download
    pretrained = "pretrained"   # from_pretrained(model.path or hub_id)


class Phase(Choice):
    prefill = "prefill"         # the prompt at once
    decode = "decode"           # one token against a KV cache of seq_len


class InputDtype(Choice):
    float = "float"             # normal floats in the run's precision
    long = "long"
    int64 = "int64"
    int = "int"
    int32 = "int32"
    bool = "bool"


@dataclass
class ModelConfig:
    """What every model file has. `overrides` shrinks the model (`model.overrides='${model.tiny}'`): it is
    merged into the mapping `overrides_apply_to` names, whose keys are the only ones it may set."""

    overrides_apply_to: ClassVar[str | None] = None

    name: str = MISSING
    task: str = MISSING                     # image-classification | object-detection | image-segmentation | nlp
    builder: str = MISSING                  # dotted path of build(cfg, device, dtype) -> ModelBundle
    hub_id: str | None = None            # the public checkpoint it stands for
    path: str | None = None              # a local checkpoint for weights=pretrained
    weights: Weights = Weights.random
    params_published: int | None = None
    outputs: list[str] = field(default_factory=list)
    overrides: dict[str, Any] = field(default_factory=dict)
    tiny: dict[str, Any] = field(default_factory=dict)
    quant_skip: list[str] = field(default_factory=lambda: ["lm_head"])  # Linear layers +quant leaves in float


@dataclass
class HfModelConfig(ModelConfig):
    """transformers models: the `*Config` class and its values, the model class."""

    overrides_apply_to: ClassVar[str | None] = "config"

    config_class: str = MISSING             # e.g. LlamaConfig
    model_class: str = MISSING              # e.g. LlamaForCausalLM
    config: dict[str, Any] = MISSING        # the checkpoint's config values
    attn_implementation: str | None = "sdpa"  # eager | sdpa; null: the library's default
    inputs: list[str] = MISSING             # input tensor names (ONNX names)


@dataclass
class HfTextConfig(HfModelConfig):
    """ngbench.models.hf_text: token ids from the dataset, prefill or decode."""

    builder: str = "ngbench.models.hf_text.build"
    phase: Phase = Phase.prefill
    seq_len: int | None = 128            # tokens per sequence (null: the dataset's lines at their own lengths)
    tokenizer: bool = True                  # use the checkpoint's tokenizer when it is on disk


@dataclass
class HfVisionConfig(HfModelConfig):
    """ngbench.models.hf_vision: pixels through the checkpoint's image processor."""

    builder: str = "ngbench.models.hf_vision.build"
    processor: dict[str, Any] = MISSING     # `class` + the checkpoint's preprocessor values
    align_float_inputs: list[str] = field(default_factory=list)  # module classes whose float inputs are cast


@dataclass
class TorchvisionDetectionConfig(ModelConfig):
    """ngbench.models.torchvision_detection: a torchvision detection builder and its kwargs."""

    overrides_apply_to: ClassVar[str | None] = "kwargs"

    builder: str = "ngbench.models.torchvision_detection.build"
    torchvision_builder: str = MISSING      # e.g. fasterrcnn_resnet50_fpn
    weights_enum: str = MISSING             # e.g. FasterRCNN_ResNet50_FPN_Weights.COCO_V1
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class InputSpec:
    """One input tensor of a custom model: [batch_size, *shape]."""

    name: str = MISSING
    shape: list[int] = field(default_factory=list)
    dtype: InputDtype = InputDtype.float
    high: int = 2                           # integers are drawn from [0, high)


@dataclass
class CustomModelConfig(ModelConfig):
    """ngbench.models.custom: any nn.Module class or factory (`_target_`) with its arguments (`init`)."""

    overrides_apply_to: ClassVar[str | None] = "init"

    _target_: str = MISSING
    builder: str = "ngbench.models.custom.build"
    task: str = "custom"
    init: dict[str, Any] = field(default_factory=dict)
    inputs: list[InputSpec] = MISSING
    outputs: list[str] = field(default_factory=lambda: ["output"])


# Hydra's ConfigStore names: schema_model_<family>
MODEL_SCHEMAS = {"base": ModelConfig, "hf_text": HfTextConfig, "hf_vision": HfVisionConfig,
                 "torchvision_detection": TorchvisionDetectionConfig, "custom": CustomModelConfig}
