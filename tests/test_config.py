"""The typed config: every option of every group composes onto its schema, YAML files hold no default of
their schema, and every bad input gets its one line before anything is built (composed in-process here;
tests/test_cli.py runs the one-line contract through the real CLI; the sweeps: tests/test_sweeps.py)."""

import dataclasses
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, compose, group_options
from omegaconf import OmegaConf

from ngbench.cli import config_error_message, flow_schemas
from ngbench.config import DATASET_SCHEMAS, PlatformConfig, QuantConfig, RunConfig
from ngbench.errors import UserError
from ngbench.flows.config import FlowConfig
from ngbench.models.config import ModelConfig
from ngbench.run import checked_context

GROUP_SCHEMAS = {"flow": FlowConfig, "model": ModelConfig, "dataset": tuple(DATASET_SCHEMAS.values()),
                 "platform": PlatformConfig, "quant": QuantConfig}


def one_line(*overrides: str) -> str:
    """The line the CLI prints for these overrides: Hydra's composition error reformatted, or the UserError
    of the checks that run before anything is built."""
    try:
        cfg = compose(*overrides)
    except Exception as error:  # Hydra's and OmegaConf's own errors
        message = config_error_message(error)
        assert message is not None, f"not a config error: {error!r}"
        return message
    with pytest.raises(UserError) as caught:
        checked_context(cfg, "/nonexistent/run")
    return str(caught.value)


@pytest.mark.parametrize("group", ["flow", "platform", "dataset", "model", "quant"])
@pytest.mark.slow
def test_every_option_composes_onto_its_schema(group):
    options = group_options(group)
    assert options and not [o for o in options if o.startswith("schema_")]
    for option in options:
        cfg = compose(f"+{group}={option}" if group == "quant" else f"{group}={option}")
        assert cfg[group].name == option
        assert issubclass(OmegaConf.get_type(cfg[group]), GROUP_SCHEMAS[group]), (group, option)


def test_each_flow_package_has_its_config_beside_it():
    assert set(flow_schemas()) >= {"torch", "inductor", "ort", "trt", "onnx"}
    for name, schema in flow_schemas().items():
        assert schema.__module__ == f"ngbench.flows.{name}.config"
        if name != "onnx":  # the ONNX base names no flow class of its own
            assert schema._target_.startswith(f"ngbench.flows.{name}.flow.")


def test_quant_is_an_optional_group():
    assert compose().quant is None
    cfg = compose("model=llama2", "flow=ort", "+quant=int8")
    assert (cfg.model.name, cfg.flow.name, cfg.quant.name) == ("llama2", "ort", "int8")
    assert cfg.quant.llm_int8_threshold == QuantConfig.llm_int8_threshold


def test_defaults_come_from_the_schema():
    cfg = compose()
    assert (cfg.model.name, cfg.flow.name, cfg.platform.name) == ("gpt2", "torch", "auto")
    for f in dataclasses.fields(RunConfig):
        if f.default not in (dataclasses.MISSING, "???"):
            assert cfg[f.name] == f.default, f.name
    assert cfg.precision == "fp32" and f"{cfg.precision}" == "fp32"  # a choice reads as its value
    assert cfg.model.weights == "random" and cfg.model.phase == "prefill" and cfg.flow._target_.endswith("TorchFlow")


def _schema_default(schema: type, key: str):
    for f in dataclasses.fields(schema):
        if f.name == key:
            if f.default is not dataclasses.MISSING:
                return f.default
            return f.default_factory() if f.default_factory is not dataclasses.MISSING else dataclasses.MISSING
    return dataclasses.MISSING


@pytest.mark.parametrize("group", ["flow", "platform", "dataset", "model", "quant"])
@pytest.mark.slow
def test_no_yaml_repeats_a_default_of_its_schema(group):
    for path in sorted((ROOT / "conf" / group).glob("*.yaml")):
        schema = OmegaConf.get_type(compose(f"+{group}={path.stem}" if group == "quant" else
                                            f"{group}={path.stem}")[group])
        for key, value in (yaml.safe_load(path.read_text()) or {}).items():
            default = _schema_default(schema, key)
            assert default is dataclasses.MISSING or value != default, f"{path.name}: {key}: {value} is the default"


def test_the_top_config_holds_no_values():
    assert set(yaml.safe_load((ROOT / "conf" / "config.yaml").read_text())) == {"defaults", "hydra"}


BAD_INPUT = [
    # Hydra's own errors while composing, reformatted
    (["model=nope"], "unknown model 'nope'; valid: bert, detr, "),
    (["flow=nope"], "unknown flow 'nope'; valid: inductor, ort, torch, trt"),
    (["platform=tpu"], "unknown platform 'tpu'; valid: auto, cpu, cuda"),
    (["+quant=int4"], "unknown quant 'int4'; valid: int8"),
    (["quant=int8"], "To append to your default list use +quant=int8"),
    (["batchsize=2"], "unknown key 'batchsize' (did you mean batch_size?); valid keys there: dataset, model"),
    (["batch_size=abc"], "batch_size=abc is not valid: Value 'abc' of type 'str' could not be converted to Integer"),
    (["batch_size=1.5"], "batch_size=1.5 is not valid"),
    (["precision=fp8"], "precision=fp8 is not valid: Invalid value 'fp8', expected one of [fp32, fp16, bf16]"),
    (["model.phase=sample"], "model.phase=sample is not valid: Invalid value 'sample', expected one of [prefill, decode]"),
    (["model.weights=downloaded"], "expected one of [random, pretrained]"),
    (["dataset.source=fake"], "expected one of [auto, real, sample]"),
    (["flow=inductor", "flow.mode=fast"], "expected one of [default, reduce-overhead, max-autotune, max-autotune-no"),
    (["flow=ort", "flow.provider=rocm"], "expected one of [auto, cpu, cuda, tensorrt]"),
    (["platform.device=tpu"], "expected one of [auto, cpu, cuda]"),
    (["calibration.mode=sometimes"], "expected one of [cached, force, off]"),
    (["model=gpt2", "+model.init.x=1"], "unknown key 'model.init'"),
    (["bad=override=x"], "cannot parse the override 'bad=override=x'"),
    # keys Hydra's `+` adds past a schema, and what the types cannot say: validate()
    (["+batchsize=2"], "unknown key 'batchsize' (did you mean batch_size?)"),
    (["+flow.mode=fast"], "unknown key 'flow.mode'; valid keys there: _target_, name"),
    (["+model.overrides.n_layers=2"], "model.overrides.n_layers is not a key of model.config of model=gpt2"),
    (["model=detr", "+model.overrides.backbone_config.depth=[1]"], "model.overrides.backbone_config.depth is not"),
    (["model=faster_rcnn", "+model.overrides.min_sizes=2"], "not a key of model.kwargs of model=faster_rcnn"),
    (["platform.threads=0"], "platform.threads=0 is not valid; platform.threads must be a positive number"),
    (["batch_size=0"], "batch_size=0 is not valid; batch_size must be a positive number"),
    (["batch_size=-2"], "batch_size=-2 is not valid"),
    (["profile_warmup=-1"], "profile_warmup=-1 is not valid; profile_warmup must be at least 0"),
    (["min_time_s=-0.5"], "min_time_s=-0.5 is not valid"),
    (["max_time_s=0"], "max_time_s=0.0 is not valid; max_time_s must be a positive number of seconds, or null"),
    (["iters=2", "profile_iters=2", "blocks=3"], "iters=2 and profile_iters=2 must each be at least blocks=3"),
    (["iters=0"], "iters=0 is not valid; iters must be a positive number"),
    (["profile_iters=0"], "profile_iters=0 is not valid; profile_iters must be a positive number"),
    (["blocks=0"], "blocks=0 is not valid; blocks must be a positive number"),
    (["iters=5", "profile_iters=2", "blocks=3"], "iters=5 and profile_iters=2 must each be at least blocks=3"),
    (["dataset.root=/no/such/dir"], "dataset.root=/no/such/dir does not exist"),
    (["dataset.source=real"], "dataset.source=real needs dataset.root"),
    (["model.config_class=???"], "model.config_class: no value given"),
    # the flows' own combination rules (FlowConfig.check), before anything is built
    (["model=gpt2", "+quant=int8", "precision=fp16", "platform=cpu"], "CPU dynamic int8 runs fp32 activations"),
    (["flow=inductor", "+quant=int8", "platform=cpu"], "flow=inductor compiles the float model"),
    (["flow=ort", "precision=bf16", "platform=cpu"], "flow=ort does not run bf16 models"),
    (["flow=ort", "flow.provider=cuda", "platform=cpu"], "flow=ort provider=cuda needs a GPU platform"),
    (["flow=trt", "platform=cpu"], "flow=trt needs TensorRT"),
]


@pytest.mark.parametrize("overrides,message", BAD_INPUT, ids=[" ".join(a) for a, _ in BAD_INPUT])
@pytest.mark.slow
def test_bad_input_gets_one_clear_line_before_anything_is_built(overrides, message):
    line = " ".join(one_line(*overrides).split())
    assert message in line
    assert "\n" not in one_line(*overrides)


@pytest.mark.slow
def test_a_user_model_is_checked_against_its_schema(tmp_path: Path):
    examples = ROOT / "docs" / "examples"
    searchpath = f"hydra.searchpath=[file://{examples}]"
    assert OmegaConf.get_type(compose(searchpath, "model=my_encoder").model).__name__ == "CustomModelConfig"
    assert "unknown key 'model.nit'" in one_line(searchpath, "model=my_encoder", "+model.nit=2")
    assert "model.overrides.dmodel is not a key of model.init" in one_line(searchpath, "model=my_encoder",
                                                                         "+model.overrides.dmodel=64")
    assert "model.inputs[0].dtype=half is not valid" in one_line(searchpath, "model=my_encoder",
                                                                "model.inputs.0.dtype=half")
    toy = compose(searchpath, "model=toy_cnn").model  # no schema: its builder reads its own keys
    assert OmegaConf.get_type(toy) is dict and toy.width == 32
