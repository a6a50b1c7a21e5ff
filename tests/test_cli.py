"""Bad input through the real CLI: one clear line, non-zero exit, no traceback, nothing half-written."""

import subprocess
import sys

import pytest
from conftest import ROOT, TINY, run_cli

BAD_INPUT = [
    (["model=nope"], "unknown model 'nope'; valid: "),
    (["flow=nope"], "unknown flow 'nope'; valid: inductor, ort, torch, trt"),
    (["platform=tpu"], "unknown platform 'tpu'; valid: auto, cpu, cuda"),
    (["+quant=int4"], "unknown quant 'int4'; valid: int8"),
    (["quant=int8"], "quant is an optional group: add it with +quant=int8"),
    (["-m", "model=swin_t,nope"], "unknown model 'nope'"),
    (["batch_size=0"], "batch_size=0 is not valid; batch_size must be a positive integer"),
    (["batch_size=-2"], "batch_size=-2 is not valid"),
    (["batch_size=abc"], "batch_size='abc' is not valid"),
    (["batch_size=1.5"], "batch_size=1.5 is not valid"),
    (["profile_warmup=-1"], "profile_warmup=-1 is not valid; profile_warmup must be an integer >= 0"),
    (["precision=fp8"], "precision='fp8' is not valid; valid: fp32, fp16, bf16"),
    (["dataset.root=/no/such/dir"], "dataset.root=/no/such/dir does not exist"),
    (["model=gpt2", "+quant=int8", "precision=fp16", "platform=cpu"], "CPU dynamic int8 runs fp32 activations"),
]


@pytest.mark.parametrize("args,message", BAD_INPUT, ids=[" ".join(a) for a, _ in BAD_INPUT])
def test_bad_input_gets_one_clear_line(args, message, tmp_path):
    result = run_cli(*args, f"hydra.run.dir={tmp_path}/run", f"hydra.sweep.dir={tmp_path}/sweep", timeout=120)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert message in lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert not list(tmp_path.rglob("ops.parquet")) and not list(tmp_path.rglob("summary.json"))


def test_cuda_platform_without_gpu_is_a_clear_error(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the error path needs one without")
    result = run_cli("platform=cuda", *TINY[:-1], f"hydra.run.dir={tmp_path}/run")
    assert result.returncode == 2
    assert "platform=cuda but no CUDA GPU is visible" in result.stderr.strip().splitlines()[-1]
    assert "Traceback" not in result.stderr


def test_help_and_cfg_work_as_in_hydra():
    assert run_cli("--help", timeout=60).returncode == 0
    job = run_cli("--cfg", "job", "model=swin_t", timeout=60)
    assert job.returncode == 0 and "name: swin_t" in job.stdout and "name: imagenet" in job.stdout


def test_import_ngbench_loads_no_heavy_library():
    code = ("import sys, ngbench, ngbench.taxonomy, ngbench.schema, ngbench.report, ngbench.errors; "
            "heavy = [m for m in ('torch', 'onnxruntime', 'tensorrt', 'transformers') if m in sys.modules]; "
            "assert not heavy, heavy")
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


def test_console_script_works_from_any_directory(tmp_path):
    import shutil

    script = shutil.which("ngbench")
    assert script, "the ngbench console script is not installed (pip install -e .)"
    result = subprocess.run([script, "--cfg", "job", "model=swin_t"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert "name: swin_t" in result.stdout
