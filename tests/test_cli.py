"""The real CLI: bad input gets one clear line and exit code 2 with nothing written (every case of it is
composed in-process in tests/test_config.py; here the contract itself), other errors keep their
traceback, and Hydra's own ways of finding configs and of printing them work."""

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, TINY, run_cli

from ngbench.config import RunConfig

ONE_LINE = [
    (["model=nope"], "ngbench: error: unknown model 'nope'; valid: bert, detr, "),   # Hydra's, while composing
    (["-m", "model=swin_t,nope"], "ngbench: error: unknown model 'nope'; valid: "),   # a sweep, before any cell
    (["model=gpt2", "+quant=int8", "precision=fp16", "platform=cpu"], "CPU dynamic int8 runs fp32 activations"),
    # the typos that used to run silently with the wrong settings
    (["+batchsize=2"], "ngbench: error: unknown key 'batchsize' (did you mean batch_size?); valid keys there: "),
    (["+model.overrides.n_layers=2"], "ngbench: error: model.overrides.n_layers is not a key of model.config of "
                                      "model=gpt2, so it would change nothing; valid: vocab_size, n_positions, n_embd, n_layer,"),
    (["platform.threads=0"], "ngbench: error: platform.threads=0 is not valid; platform.threads must be a positive"),
]


@pytest.mark.parametrize("args,message", ONE_LINE, ids=[" ".join(a) for a, _ in ONE_LINE])
@pytest.mark.slow
def test_bad_input_gets_one_clear_line(args, message, tmp_path):
    result = run_cli(*args, f"hydra.run.dir={tmp_path}/run", f"hydra.sweep.dir={tmp_path}/sweep", timeout=120)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(message) or message in lines[0], lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    written = [p.name for p in tmp_path.rglob("*") if p.is_file()]
    assert written in ([], ["multirun.yaml"]), written   # nothing half-written (a refused sweep keeps Hydra's own)


@pytest.mark.slow
def test_other_errors_keep_their_traceback(tmp_path):
    """A model that fails in its own code is no config error: Python's traceback, exit code 1."""
    result = run_cli("hydra.searchpath=[file://docs/examples]", "model=my_encoder", "model.inputs.0.shape=[8,100]",
                     *TINY[1:], f"hydra.run.dir={tmp_path}/run", timeout=300)
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "RuntimeError" in result.stderr
    assert "ngbench: error" not in result.stderr


@pytest.mark.slow
def test_cuda_platform_without_gpu_is_a_clear_error(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the error path needs one without")
    result = run_cli("platform=cuda", *TINY[:-1], f"hydra.run.dir={tmp_path}/run")
    assert result.returncode == 2
    assert "platform=cuda but no CUDA GPU is visible" in result.stderr.strip().splitlines()[-1]
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_help_lists_the_groups_and_the_typed_config():
    result = run_cli("--help", timeout=60)
    assert result.returncode == 0
    assert "model: bert, detr" in result.stdout and "flow: inductor, ort, torch, trt" in result.stdout
    assert "quant: int8" in result.stdout and "precision: fp32" in result.stdout
    assert f"min_time_s: {RunConfig.min_time_s}" in result.stdout
    assert "schema_" not in result.stdout  # the stored schemas are no config group


@pytest.mark.slow
def test_cfg_job_prints_the_typed_config():
    job = run_cli("--cfg", "job", "model=swin_t", "flow=ort", "precision=fp16", timeout=60)
    assert job.returncode == 0, job.stderr
    for line in ("name: swin_t", "name: imagenet", "format: imagefolder", "precision: fp16", "provider: auto",
                 "graph_optimization: all", "_target_: ngbench.flows.ort.flow.OrtFlow", "weights: random",
                 "mode: cached", "quant: null"):
        assert line in job.stdout, line


@pytest.mark.slow
def test_config_dir_and_package_search_paths_find_user_models(tmp_path: Path):
    """--config-dir, hydra.searchpath with pkg://, and a SearchPathPlugin an installed package brings."""
    package = tmp_path / "site" / "my_models"
    (package / "conf" / "model").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "conf" / "__init__.py").write_text("")
    (package / "conf" / "model" / "pkg_encoder.yaml").write_text(
        (ROOT / "docs" / "examples" / "model" / "my_encoder.yaml").read_text().replace("name: my_encoder",
                                                                                   "name: pkg_encoder"))
    plugin = tmp_path / "site" / "hydra_plugins" / "my_models_searchpath"
    plugin.mkdir(parents=True)
    (plugin / "__init__.py").write_text(
        "from hydra.core.config_search_path import ConfigSearchPath\n"
        "from hydra.plugins.search_path_plugin import SearchPathPlugin\n\n\n"
        "class MyModels(SearchPathPlugin):\n"
        "    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:\n"
        "        search_path.append(provider='my_models', path='pkg://my_models.conf')\n")
    site = {"PYTHONPATH": str(tmp_path / "site")}
    cases = {"config-dir": (["--config-dir", "docs/examples", "model=my_encoder"], {}, "name: my_encoder"),
             "pkg": (["hydra.searchpath=[pkg://my_models.conf]", "model=pkg_encoder"], site, "name: pkg_encoder"),
             "plugin": (["model=pkg_encoder"], site, "name: pkg_encoder")}   # the installed plugin alone finds it
    for name, (args, env, expected) in cases.items():
        result = run_cli("--cfg", "job", *args, env=env, timeout=60)
        assert result.returncode == 0 and expected in result.stdout, (name, result.stderr)
    bare = run_cli("--cfg", "job", "model=pkg_encoder", timeout=60)
    assert bare.returncode == 2 and "unknown model 'pkg_encoder'" in bare.stderr


@pytest.mark.slow
def test_import_ngbench_loads_no_heavy_library():
    code = ("import sys, ngbench, ngbench.taxonomy, ngbench.schema, ngbench.report, ngbench.errors, ngbench.cli; "
            "ngbench.cli.register_schemas(); "
            "heavy = [m for m in ('torch', 'onnxruntime', 'tensorrt', 'transformers', 'pandas') if m in sys.modules]; "
            "assert not heavy, heavy")
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


@pytest.mark.slow
def test_console_script_works_from_any_directory(tmp_path):
    import shutil

    script = shutil.which("ngbench")
    assert script, "the ngbench console script is not installed (pip install -e .)"
    result = subprocess.run([script, "--cfg", "job", "model=swin_t"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert "name: swin_t" in result.stdout
