"""What a single run says, through the real CLI: its last line names its output directory, no third-party
noise reaches the console, and the offline and empty-data errors name what to change."""

import pytest
from conftest import ROOT, TINY, run_cli

NOISE = ["USDT:", "gpuGetDeviceCount", "[root][INFO]", "No CUDA runtime is found", "Retrying in", "Traceback"]


def noise_in(result) -> list[str]:
    return [line for line in (result.stdout + result.stderr).splitlines() if any(n in line for n in NOISE)]


@pytest.mark.slow
def test_a_quiet_run_ends_naming_its_directory(run_dir):
    """ORT's dynamic int8 quantizer logs a dozen INFO lines on the root logger, and every torch profiler block
    makes Kineto print USDT profiler_start/stop lines on fd 2 (and `gpuGetDeviceCount failed` without a GPU):
    none of it reaches the console at the default log level."""
    result = run_cli("model=llama2", "flow=ort", "+quant=int8", *TINY, f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert noise_in(result) == []
    assert result.stdout.strip().splitlines()[-1] == f"results: {run_dir}"


@pytest.mark.slow
def test_the_default_run_directory_names_the_variant_and_kineto_is_silent(tmp_path):
    # from a fresh directory, with the profiler's cost calibrated once for the whole test session
    result = run_cli(*TINY, f"calibration.dir={ROOT / 'outputs' / 'calibration'}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert noise_in(result) == [] and result.stderr == ""
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("results: outputs/runs/") and last.endswith("_gpt2_tiny_torch_bs1")
    assert (tmp_path / last.removeprefix("results: ") / "summary.json").exists()


@pytest.mark.parametrize("offline,setting", [("1", "HF_HUB_OFFLINE=1 is set"),
                                             (None, "unreachable")])
@pytest.mark.slow
def test_offline_pretrained_fails_at_once_naming_the_offline_setting(tmp_path, offline, setting):
    """No hub retries (about 30 s offline) before the one line: with HF_HUB_OFFLINE, or after a short
    connection probe, only the local cache is read. This machine has no route to huggingface.co."""
    result = run_cli("model.weights=pretrained", "model.hub_id=ngbench-offline-test/gpt2", *TINY,
                     f"hydra.run.dir={tmp_path}/run", env={"HF_HUB_OFFLINE": offline}, timeout=120)
    assert result.returncode == 2
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("ngbench: error: model 'gpt2': cannot load pretrained weights") and setting in line
    assert "HF_HUB_OFFLINE" in line and noise_in(result) == [] and not (tmp_path / "run").exists()


@pytest.mark.slow
def test_an_empty_wikitext_file_is_named(tmp_path):
    empty = tmp_path / "wikitext" / "wiki.test.raw"
    empty.parent.mkdir()
    empty.write_bytes(b"")
    result = run_cli(f"dataset.root={empty.parent}", "dataset.source=real", *TINY, f"hydra.run.dir={tmp_path}/run",
                     timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"ngbench: error: {empty} is empty (0 bytes): dataset 'wikitext' split 'test' needs text; point "
        f"dataset.root at the real file or use dataset.source=sample")
