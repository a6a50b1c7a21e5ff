"""Every option of every group composes; the user's own command composes (the sweeps: test_sweeps.py)."""

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from ngbench.cli import CONF_DIR, options


@pytest.fixture
def composer():
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        yield lambda *overrides: compose(config_name="config", overrides=list(overrides))
    GlobalHydra.instance().clear()


@pytest.mark.parametrize("group", ["flow", "platform", "dataset"])
def test_every_option_composes(composer, group):
    for option in options(group):
        cfg = composer(f"{group}={option}")
        assert cfg[group].name == option


def test_quant_is_an_optional_group(composer):
    assert "quant" not in composer()
    cfg = composer("model=llama2", "flow=ort", "+quant=int8")
    assert (cfg.model.name, cfg.flow.name, cfg.quant.name) == ("llama2", "ort", "int8")


def test_defaults(composer):
    cfg = composer()
    assert (cfg.model.name, cfg.flow.name, cfg.platform.name) == ("gpt2", "torch", "auto")
    assert cfg.batch_size == 1 and cfg.precision == "fp32"
