"""What a model builder hands to a flow: the module, one batch of inputs, and facts about both."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ModelBundle:
    """A built model plus one ready batch.

    `model(*args, **kwargs)` is one inference. Tensors in args/kwargs are already preprocessed the way
    the model's real pipeline does it (image processor, tokenizer, torchvision transform) and sit on
    the target device in the run's precision. `input_names`/`output_names` name the tensors for ONNX
    export (flattened order of args then kwargs).
    """

    model: Any                                  # torch.nn.Module, eval mode, on the target device
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    task: str = ""
    param_count: int = 0
    input_names: list[str] = field(default_factory=list)
    output_names: list[str] = field(default_factory=list)
    facts: dict = field(default_factory=dict)   # anything worth recording in summary.json (seq_len, image sizes...)
    placement: dict = field(default_factory=dict)  # module -> device when spread over devices

    def __call__(self):
        return self.model(*self.args, **self.kwargs)
